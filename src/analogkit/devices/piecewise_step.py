"""Piecewise-linear step device: the step size is interpolated from a table over the weight range."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from analogkit.devices.base import DeviceState, PulsedDevice, register_device

__all__ = ["PiecewiseStepDevice"]


@register_device
@dataclass
class PiecewiseStepDevice(PulsedDevice):
    """Step size interpolated linearly between nodes spread evenly over each element's range.

    With n = len(nodes) − 1 sections on [b^min_ij, b^max_ij], x = (w − b^min)/(b^max − b^min)·n,
    i = min(⌊x⌋, n − 1), q = min(x − i, 1)::

        w ← w + d·Δw^d_ij·((1 − q)·v^d[i] + q·v^d[i+1])·(1 + σξ)      (then clip)

    ``piecewise_up``/``piecewise_down`` (same length, values >= 0 in units of the element's step,
    at least one > 0) are measured relative step sizes; a single node gives a constant step.
    Source: AIHWKit ``PiecewiseStepDevice`` (Rasch et al. 2021, arXiv:2104.02184), used to plug in a
    measured step-vs-conductance curve directly. Non-linear in w: ``pulse_n`` loops (exact).
    """

    kind = "piecewise_step"

    piecewise_up: list[float] = field(default_factory=lambda: [1.0])
    piecewise_down: list[float] = field(default_factory=lambda: [1.0])
    write_noise_std: float = 0.0

    def validate(self) -> None:
        super().validate()
        for name in ("piecewise_up", "piecewise_down"):
            nodes = getattr(self, name)
            allowed = "use a non-empty list of numbers >= 0 (relative step sizes), at least one > 0"
            if not isinstance(nodes, (list, tuple)) or len(nodes) == 0:
                self._fail(name, nodes, allowed)
            for v in nodes:
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                    self._fail(name, nodes, allowed)
            if max(nodes) <= 0:
                self._fail(name, nodes, allowed)
            setattr(self, name, [float(v) for v in nodes])
        if len(self.piecewise_up) != len(self.piecewise_down):
            self._fail(
                "piecewise_down", self.piecewise_down,
                f"use as many nodes as piecewise_up ({len(self.piecewise_up)})",
            )

    def _mean_std_dir(self, state: DeviceState, w: Tensor, up: bool) -> tuple[Tensor, Tensor]:
        nodes = torch.tensor(self.piecewise_up if up else self.piecewise_down, dtype=w.dtype, device=w.device)
        n_sec = nodes.numel() - 1
        step = state.dw_up if up else state.dw_down
        span = state.w_max - state.w_min
        ok = span > 0
        if n_sec == 0:
            factor = nodes[0].expand_as(w)
        else:
            x = ((w - state.w_min) / torch.where(ok, span, torch.ones_like(span)) * n_sec).clamp(min=0)
            i = x.floor().clamp(max=n_sec - 1)
            q = (x - i).clamp(max=1)
            i = i.long()
            factor = (1 - q) * nodes[i] + q * nodes[i + 1]
            factor = torch.where(ok, factor, nodes[0].expand_as(factor))
        mean = factor * step if up else -factor * step
        return mean, self.dw_min_std * mean.abs()
