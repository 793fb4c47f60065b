"""Analog tiles: the crossbars holding a layer's weight, with their periphery and generator."""

from analogkit.tile.tile import AnalogTile, ConfigMismatchError
from analogkit.periphery.mvm import TileGrid

__all__ = ["AnalogTile", "ConfigMismatchError", "TileGrid"]
