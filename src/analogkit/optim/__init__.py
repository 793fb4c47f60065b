"""Optimizers that train pulsed analog tiles alongside ordinary parameters."""

from analogkit.optim.sgd import AnalogSGD, analog_tiles_in

__all__ = ["AnalogSGD", "analog_tiles_in"]
