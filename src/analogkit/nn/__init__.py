"""Analog layers, model conversion and summaries."""

from analogkit.nn.base import AnalogLayer, AnalogSequential, analog_layers, analog_tiles, seed_tiles, tile_configs_in
from analogkit.nn.conv import AnalogConv1d, AnalogConv2d, AnalogConv3d
from analogkit.nn.conversion import CONVERSION_MAP, convert_to_analog, convert_to_digital
from analogkit.nn.linear import AnalogLinear
from analogkit.nn.summary import AnalogSummary, LayerSummary, analog_summary

__all__ = [
    "AnalogLayer", "AnalogSequential", "AnalogLinear", "AnalogConv1d", "AnalogConv2d", "AnalogConv3d",
    "CONVERSION_MAP", "convert_to_analog", "convert_to_digital", "analog_summary", "AnalogSummary",
    "LayerSummary", "analog_layers", "analog_tiles", "seed_tiles", "tile_configs_in",
]
