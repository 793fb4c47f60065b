"""AnalogTile: the crossbar(s) that hold one layer's weight, with their periphery and randomness."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from analogkit.config.tile import TileConfig
from analogkit.periphery.mvm import AnalogMVMFunction, TileGrid
from analogkit.random import make_generator

_CHECKPOINT_FORMAT = 1


class ConfigMismatchError(ValueError):
    """A checkpoint was saved with a different TileConfig than the model it is loaded into."""


class AnalogTile(nn.Module):
    """The physical tiles of one layer: mapping, periphery, learned output scales and a generator.

    The weight itself (an ``nn.Parameter`` of shape (G, out, in) for G groups) is passed in by
    the layer, so layers keep ``weight``/``bias`` exactly where ``nn.Linear``/``nn.Conv*d`` keep
    them and every torch optimizer, initialiser and checkpoint tool works unchanged.

    Forward (per group)::

        [x, 1] and [W, b]          if the bias is analog (an extra crossbar column)
        m = max|W| / ω             weight scaling (per layer or per output column), digital
        y = MVM(x, W/m) · m        through the forward periphery of every tile (see periphery.mvm)
        y = y · γ + b              learned output scales γ and digital bias

    Every random draw (noise, stochastic rounding) comes from ``self.generator``, seeded at
    construction (see :func:`analogkit.manual_seed`) and saved in the state dict.
    """

    def __init__(
        self,
        out_size: int,
        in_size: int,
        config: TileConfig | None = None,
        *,
        groups: int = 1,
        bias: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        config = TileConfig() if config is None else config
        if not isinstance(config, TileConfig):
            raise TypeError(f"config: expected a TileConfig, got {type(config).__name__}")
        for name, value in (("out_size", out_size), ("in_size", in_size), ("groups", groups)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"AnalogTile.{name}: {value!r} is not allowed; use an integer >= 1")
        self.config = config
        self.out_size, self.in_size, self.groups = out_size, in_size, groups
        self.has_bias = bias
        self.analog_bias = bias and not config.mapping.digital_bias
        mapping = config.mapping
        self.grid = TileGrid.for_matrix(
            out_size, in_size + int(self.analog_bias), mapping.max_output_size, mapping.max_input_size
        )
        self.out_scales: nn.Parameter | None = None
        if mapping.learn_out_scaling:
            n = groups * out_size if mapping.out_scaling_columnwise else 1
            self.out_scales = nn.Parameter(torch.ones(n))
        self.register_buffer("_device_probe", torch.empty(0), persistent=False)
        self.generator = make_generator(seed)

    # -- compute ----------------------------------------------------------------------------
    def forward(self, x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        """``x``: (N, G, in), ``weight``: (G, out, in), ``bias``: (G·out,) or None → (N, G, out)."""
        cfg = self.config
        g, out = self.groups, self.out_size
        w = weight
        if self.analog_bias and bias is not None:
            x = torch.cat([x, x.new_ones(x.shape[0], g, 1)], dim=-1)
            w = torch.cat([w, bias.reshape(g, out, 1)], dim=-1)
        scale = self.mapping_scales(w)
        if scale is not None:
            w = w / scale
        y = AnalogMVMFunction.apply(x, w, self.grid, cfg.forward, cfg.backward, self.generator)
        if scale is not None:
            y = y * scale.reshape(1, g, -1)
        if self.out_scales is not None:
            y = y * self.out_scales.reshape(1, g, -1) if self.out_scales.numel() > 1 else y * self.out_scales
        if bias is not None and not self.analog_bias:
            y = y + bias.reshape(1, g, out)
        return y

    def mapping_scales(self, weight: Tensor) -> Tensor | None:
        """Digital scales m with max|W/m| = ω (per layer: shape (1, 1, 1); per column: (G, out, 1)).

        Treated as constants for autograd (computed from the detached weight).
        """
        omega = self.config.mapping.weight_scaling_omega
        if omega <= 0:
            return None
        w = weight.detach().abs()
        if self.config.mapping.weight_scaling_columnwise:
            m = w.amax(dim=-1, keepdim=True)
        else:
            m = w.amax().reshape(1, 1, 1)
        return torch.where(m > 0, m / omega, torch.ones_like(m))

    # -- bookkeeping ------------------------------------------------------------------------
    @property
    def n_tiles(self) -> int:
        return self.groups * self.grid.n_tiles

    def manual_seed(self, seed: int) -> None:
        """Reseed this tile's generator."""
        self.generator.manual_seed(seed)

    def _apply(self, fn: Any, recurse: bool = True) -> "AnalogTile":  # type: ignore[override]
        super()._apply(fn, recurse)
        device = self._device_probe.device
        if self.generator.device != device:
            # A generator cannot move between devices; continue deterministically from the old one.
            seed = int(torch.randint(0, 2**62, (1,), generator=self.generator, device=self.generator.device).item())
            self.generator = torch.Generator(device=device).manual_seed(seed)
        return self

    def get_extra_state(self) -> dict[str, Any]:
        """Plain data only (loads with ``torch.load(weights_only=True)``): config, generator, format."""
        return {
            "format": _CHECKPOINT_FORMAT,
            "config": self.config.to_dict(),
            "generator_state": self.generator.get_state(),
            "generator_device": str(self.generator.device),
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        stored = TileConfig.from_dict(state["config"])
        if stored != self.config:
            differences = "; ".join(stored.diff(self.config))
            raise ConfigMismatchError(
                "checkpoint tile config differs from this model's (checkpoint vs model): "
                f"{differences}. Build the model with the checkpoint's config "
                "(analogkit.nn.tile_configs_in(state_dict) lists them) or convert it again."
            )
        if state.get("generator_device") == str(self.generator.device):
            self.generator.set_state(state["generator_state"])
        else:
            cpu = torch.Generator()
            cpu.set_state(state["generator_state"])
            self.generator.manual_seed(int(torch.randint(0, 2**62, (1,), generator=cpu).item()))

    def extra_repr(self) -> str:
        g = self.grid
        groups = f"{self.groups} groups × " if self.groups > 1 else ""
        return f"out={self.out_size}, in={self.in_size}, tiles={groups}{g.rows}×{g.cols} of {g.co}×{g.ci}"
