"""analogkit: simulate analog in-memory computing hardware for deep learning, in pure PyTorch."""

from analogkit.config import IOConfig, MappingConfig, TileConfig
from analogkit.nn import (
    AnalogConv1d, AnalogConv2d, AnalogConv3d, AnalogLinear, AnalogSequential,
    analog_summary, convert_to_analog, convert_to_digital,
)
from analogkit.random import manual_seed

# registers the compound configs' kinds, so TileConfig.from_dict can rebuild them in any process
import analogkit.compounds  # noqa: E402,F401

__version__ = "0.1.0"

__all__ = [
    "IOConfig", "MappingConfig", "TileConfig", "AnalogLinear", "AnalogConv1d", "AnalogConv2d",
    "AnalogConv3d", "AnalogSequential", "convert_to_analog", "convert_to_digital", "analog_summary",
    "manual_seed", "__version__",
]
