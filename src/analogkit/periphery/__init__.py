"""The read periphery of a crossbar as composable steps: noise management, DAC, MVM, noise, ADC."""

from analogkit.periphery.converters import noise_management_scale, quantize_
from analogkit.periphery.mvm import AnalogMVMFunction, TileGrid, analog_mvm

__all__ = ["noise_management_scale", "quantize_", "AnalogMVMFunction", "TileGrid", "analog_mvm"]
