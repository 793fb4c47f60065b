"""Configuration dataclasses: validated at construction, round-trip through YAML/JSON and checkpoints."""

from analogkit.config.base import ConfigBase, Registry
from analogkit.config.io import IOConfig
from analogkit.config.mapping import MappingConfig
from analogkit.config.tile import TileConfig

__all__ = ["ConfigBase", "Registry", "IOConfig", "MappingConfig", "TileConfig"]
