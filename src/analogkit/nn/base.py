"""Common base of analog layers, and helpers to find them in a model."""

from __future__ import annotations

import math
from typing import Iterator

import torch
from torch import Tensor, nn

from analogkit.config.tile import TileConfig
from analogkit.tile.tile import AnalogTile


class AnalogLayer(nn.Module):
    """Base class of layers whose weight is computed on an :class:`AnalogTile` (``self.tile``)."""

    tile: AnalogTile

    @property
    def config(self) -> TileConfig:
        return self.tile.config

    def reset_parameters(self) -> None:
        """The initialisation of ``nn.Linear``/``nn.Conv*d``: Kaiming-uniform weight, uniform bias
        in ±1/sqrt(fan_in), with fan_in the inputs of one output (per group)."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.tile.in_size)
            nn.init.uniform_(self.bias, -bound, bound)

    @torch.no_grad()
    def _copy_from(self, module: nn.Module) -> "AnalogLayer":
        """Take weights, bias and training mode of the digital ``module`` (as ``from_digital`` does)."""
        self.set_weight(module.weight)  # type: ignore[arg-type]
        if module.bias is not None:
            self.bias.copy_(module.bias)  # type: ignore[union-attr,arg-type]
        self.train(module.training)
        return self

    @torch.no_grad()
    def _copy_to(self, module: nn.Module) -> nn.Module:
        """Give the digital ``module`` this layer's weights, bias and training mode (``to_digital``)."""
        module.weight.copy_(self.weight)  # type: ignore[operator]
        if self.bias is not None:
            module.bias.copy_(self.bias)  # type: ignore[union-attr,operator]
        module.train(self.training)
        return module

    def tile_weight(self) -> Tensor:
        """The weight as the tile sees it: (groups, out per group, in per group), a view."""
        return self.weight.reshape(self.tile.groups, self.tile.out_size, -1)

    def _attach_weight(self) -> None:
        """For a pulsed tile, make ``weight`` a buffer that *is* the devices' hidden weight (a view
        of the tile's ``device_w``): the initial values are written into the devices (clipped to
        their bounds) and from then on only pulses change it. Called at the end of ``__init__``."""
        if not self.tile.is_pulsed:
            return
        shape = self.weight.shape
        initial = self.weight.detach()
        del self._parameters["weight"]
        self.tile.set_weights(initial.reshape(self.tile.groups, self.tile.out_size, -1))
        self.register_buffer("weight", self.tile.device_w.view(shape))

    @torch.no_grad()
    def set_weight(self, weight: Tensor) -> None:
        """Set the weight (same shape as ``self.weight``); for pulsed tiles, clipped to the devices' bounds."""
        if tuple(weight.shape) != tuple(self.weight.shape):
            raise ValueError(f"set_weight: shape {tuple(weight.shape)} is not allowed; use {tuple(self.weight.shape)}")
        if self.tile.is_pulsed:
            self.tile.set_weights(weight.reshape(self.tile.groups, self.tile.out_size, -1))
        else:
            self.weight.copy_(weight)

    def to_digital(self) -> nn.Module:  # pragma: no cover - every subclass overrides
        raise NotImplementedError


def analog_layers(model: nn.Module) -> Iterator[tuple[str, AnalogLayer]]:
    """(qualified name, layer) for every analog layer in ``model`` (each shared layer once)."""
    for name, module in model.named_modules():
        if isinstance(module, AnalogLayer):
            yield name, module


def analog_tiles(model: nn.Module) -> Iterator[tuple[str, AnalogTile]]:
    """(qualified name, tile) for every analog tile in ``model``."""
    for name, module in model.named_modules():
        if isinstance(module, AnalogTile):
            yield name, module


def tile_configs_in(state_dict: dict) -> dict[str, TileConfig]:
    """The tile configs stored in a state dict, by tile name (to rebuild a model that fits it)."""
    out: dict[str, TileConfig] = {}
    for key, value in state_dict.items():
        if key.endswith("_extra_state") and isinstance(value, dict) and "config" in value:
            out[key[: -len("._extra_state")]] = TileConfig.from_dict(value["config"])
    return out


def seed_tiles(model: nn.Module, seed: int) -> None:
    """Reseed every tile of ``model`` deterministically from one seed (tile k gets seed + k)."""
    for k, (_, tile) in enumerate(analog_tiles(model)):
        tile.manual_seed(seed + k)


class AnalogSequential(nn.Sequential):
    """``nn.Sequential`` with helpers to reach the analog layers and tiles inside."""

    def analog_layers(self) -> Iterator[tuple[str, AnalogLayer]]:
        return analog_layers(self)

    def analog_tiles(self) -> Iterator[tuple[str, AnalogTile]]:
        return analog_tiles(self)
