"""Ideal device: floating-point weight updates, no step noise, optional hard bounds."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from analogkit.devices.base import Device, DeviceState, _check_shape, register_device

__all__ = ["IdealDevice"]


@register_device
@dataclass
class IdealDevice(Device):
    """A perfect device: every pulse adds exactly ±dw_min; no variation, no cycle-to-cycle noise.

    ``pulse_n`` adds counts·dw_min exactly (clipped to [w_min, w_max] if ``bounded``). It keeps the
    slow physics of all devices (``lifetime``, ``diffusion``, ``reset``/``reset_std``) so that
    their effect can be studied alone. Source: the floating-point reference device of AIHWKit
    (``IdealDevice``/``FloatingPointDevice``, spec §1.8).
    """

    kind = "ideal"

    bounded: bool = False
    w_max: float = 0.6
    w_min: float = -0.6

    def validate(self) -> None:
        super().validate()
        self.check_bool("bounded")
        self.check_range("w_max", 0, allowed="use a number >= 0 (the range [w_min, w_max] must contain 0)")
        self.check_range("w_min", hi=0, allowed="use a number <= 0 (the range [w_min, w_max] must contain 0)")
        if not self.w_min < self.w_max:
            self._fail("w_min", self.w_min, f"use a number below w_max = {self.w_max}")

    def _build(self, shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype) -> DeviceState:
        def full(v: float) -> Tensor:
            return torch.full(shape, v, dtype=dtype, device=generator.device)

        hi, lo = (self.w_max, self.w_min) if self.bounded else (float("inf"), float("-inf"))
        return DeviceState(
            w=full(0.0), dw_up=full(self.dw_min), dw_down=full(self.dw_min), w_max=full(hi), w_min=full(lo),
            extra=self._slow_extras(shape, generator, dtype),
        )

    def _mean_std_dir(self, state: DeviceState, w: Tensor, up: bool) -> tuple[Tensor, Tensor]:
        mean = state.dw_up if up else -state.dw_down
        return mean, torch.zeros_like(mean)

    def pulse(self, state: DeviceState, direction: Tensor, generator: torch.Generator | None = None) -> None:
        """w ← clip(w + sign(direction)·dw_min); no randomness."""
        _check_shape(self, "direction", direction, state)
        self._add(state, torch.sign(direction).to(state.dtype))

    def pulse_n(
        self, state: DeviceState, counts: Tensor, generator: torch.Generator | None = None, method: str = "auto"
    ) -> None:
        """w ← clip(w + counts·dw_min), exact for every ``method``."""
        if method not in ("auto", "loop", "closed_form"):
            raise ValueError(f"IdealDevice.pulse_n: method {method!r} is not allowed; use one of auto, loop, closed_form")
        _check_shape(self, "counts", counts, state)
        if counts.dtype.is_floating_point or counts.dtype == torch.bool:
            raise ValueError(f"IdealDevice.pulse_n: counts must be an integer tensor, got {counts.dtype}")
        self._add(state, counts.to(state.dtype))

    def pulse_n_method(self, state: DeviceState) -> str:
        return "closed_form"

    def _add(self, state: DeviceState, n: Tensor) -> None:
        new = state.w + n * torch.where(n >= 0, state.dw_up, state.dw_down)
        state.w.copy_(torch.minimum(torch.maximum(new, state.w_min), state.w_max))

    def symmetry_point(self, state: DeviceState, n_iter: int = 60) -> Tensor:
        """Up and down steps are equal everywhere: NaN (no preferred point)."""
        return torch.full_like(state.w, float("nan"))
