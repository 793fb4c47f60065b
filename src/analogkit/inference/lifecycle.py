"""The life cycle of a model deployed on an analog inference chip: program, then drift.

What each call does to which tensors:

- ``program(model)``: for every analog layer, the weight as it sits on the crossbar (weight
  [+ analog bias column] / digital weight-scaling factor) is converted to conductances, gets
  programming noise, and drift exponents are sampled (the tile's ``noise_model``, from the tile's
  generator). The tile keeps the programmed state and the resulting programmed weight; with drift
  compensation on, it also reads the fresh chip once with one-hot inputs as the reference. The
  trained ``weight`` parameter is never changed. Programming noise applies whatever the drift
  compensation setting.
- ``drift(model, t)``: every programmed tile computes its weight ``t`` seconds after programming
  (drift of the programmed conductances plus read noise at ``t``, fresh read noise every call)
  and, with compensation on, the factor α that restores the reference read's mean magnitude
  (global, or per output column).
- In **eval mode** a programmed layer computes with the programmed/drifted weight and multiplies
  its outputs by α. In **training mode** it uses the parameter as usual (hardware-aware training
  can continue); call ``program`` again afterwards. ``clear_programming(model)`` forgets it all.
"""

from __future__ import annotations

from torch import nn

from analogkit.nn.base import analog_layers


def program(model: nn.Module) -> nn.Module:
    """Program every analog layer of ``model`` (see the module docstring); returns ``model``."""
    layers = list(analog_layers(model))
    if not layers:
        raise ValueError("program: the model has no analog layers; convert it with convert_to_analog first")
    for _, layer in layers:
        layer.tile.program(layer.tile_weight(), layer.bias)
    return model


def drift(model: nn.Module, t_inference: float) -> nn.Module:
    """Let every programmed analog layer drift to ``t_inference`` seconds after programming."""
    layers = list(analog_layers(model))
    if not any(layer.tile.is_programmed for _, layer in layers):
        raise RuntimeError("drift: no analog layer is programmed; call program(model) first")
    for _, layer in layers:
        if layer.tile.is_programmed:
            layer.tile.drift(t_inference)
    return model


def clear_programming(model: nn.Module) -> nn.Module:
    """Forget the programmed state of every analog layer (eval mode uses the parameters again)."""
    for _, layer in analog_layers(model):
        layer.tile.clear_programming()
    return model
