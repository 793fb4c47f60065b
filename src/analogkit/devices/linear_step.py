"""Linear-step device: the step shrinks (or grows) linearly with the weight, up to hard bounds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from analogkit.devices.base import AffineStepDevice, DeviceState, _randn, register_device

__all__ = ["LinearStepDevice", "linear_slopes"]


def linear_slopes(
    dw_up: Tensor, dw_down: Tensor, gamma_up: Tensor | float, gamma_down: Tensor | float,
    ref_up: Tensor | float, ref_down: Tensor | float,
) -> tuple[Tensor, Tensor]:
    """Per-element slopes s⁺ = −γ⁺Δw⁺/ref_up and s⁻ = −γ⁻Δw⁻/ref_down (0 where the reference is 0).

    The up step is then Δw⁺ + s⁺·w and the down step magnitude Δw⁻ + s⁻·w: with ref_up = b^max and
    ref_down = b^min (< 0) both shrink to 0 at the bound when γ = 1 (soft bounds).
    """
    ref_up = torch.as_tensor(ref_up, dtype=dw_up.dtype, device=dw_up.device).expand_as(dw_up)
    ref_down = torch.as_tensor(ref_down, dtype=dw_up.dtype, device=dw_up.device).expand_as(dw_up)
    one = torch.ones_like(dw_up)
    s_up = torch.where(ref_up != 0, -gamma_up * dw_up / torch.where(ref_up != 0, ref_up, one), torch.zeros_like(dw_up))
    s_down = torch.where(ref_down != 0, -gamma_down * dw_down / torch.where(ref_down != 0, ref_down, one), torch.zeros_like(dw_up))
    return s_up.contiguous(), s_down.contiguous()


class _LinearFamily(AffineStepDevice):
    """Shared update rule of LinearStep and SoftBounds (slopes stored as ``slope_up``/``slope_down``)."""

    _STEP_EXTRAS: ClassVar[tuple[str, ...]] = ("slope_up", "slope_down")

    mult_noise: bool
    reverse_up: bool
    reverse_down: bool
    reverse_offset: float

    def _mult_noise(self) -> bool:
        return self.mult_noise

    def _affine_dir(self, state: DeviceState, up: bool) -> tuple[Tensor, Tensor, Tensor]:
        if up:
            return state.dw_up, state.slope_up, state.dw_up
        return -state.dw_down, -state.slope_down, state.dw_down

    def _validate_reverse(self) -> None:
        for name in ("mult_noise", "reverse_up", "reverse_down"):
            self.check_bool(name)
        self.check_range("reverse_offset", 0, allowed="use an offset >= 0")
        if (self.reverse_up or self.reverse_down) and not self.mult_noise:
            self._fail("mult_noise", self.mult_noise, "use true: reverse_up/reverse_down need multiplicative noise")

    def _references(self, state: DeviceState, w_max: Tensor | float, w_min: Tensor | float) -> tuple[Tensor | float, Tensor | float]:
        ref_up = w_min - self.reverse_offset if self.reverse_up else w_max
        ref_down = w_max + self.reverse_offset if self.reverse_down else w_min
        return ref_up, ref_down


@register_device
@dataclass
class LinearStepDevice(_LinearFamily):
    """Step size that depends linearly on the weight (saturating towards the bounds).

    Update per pulse, then clip to [b^min_ij, b^max_ij] (d = ±1)::

        multiplicative noise:  w ← w + d·(Δw^d_ij + s^d_ij·w)·(1 + σξ)
        additive noise:        w ← w + d·(s^d_ij·w + Δw^d_ij·(1 + σξ))
        s⁺_ij = −γ⁺_ij·Δw⁺_ij / b⁺,  s⁻_ij = −γ⁻_ij·Δw⁻_ij / b⁻,  γ^d_ij = |γ^d + γ^d_dtod·ξ|

    with b⁺ = w_max, b⁻ = w_min (``mean_bound_reference``) or the element's own bounds; γ = 0.1
    means the step is 10 % smaller at the bound than at w = 0. ``reverse_up`` (``reverse_down``)
    makes the step grow towards the bound instead, vanishing at b^min − reverse_offset
    (b^max + reverse_offset). ``allow_increasing`` keeps the sign of γ^d_ij.

    Source: AIHWKit ``LinearStepDevice`` (Rasch et al. 2021, arXiv:2104.02184), a linear fit of the
    conductance response used for capacitor and ECRAM cells (Li et al. VLSI 2018; Tang et al. IEDM
    2018). The n-pulse closed form is in :class:`AffineStepDevice`.
    """

    kind = "linear_step"

    gamma_up: float = 0.0
    gamma_down: float = 0.0
    gamma_up_dtod: float = 0.05
    gamma_down_dtod: float = 0.05
    allow_increasing: bool = False
    mean_bound_reference: bool = True
    mult_noise: bool = True
    write_noise_std: float = 0.0
    reverse_up: bool = False
    reverse_down: bool = False
    reverse_offset: float = 0.01

    def validate(self) -> None:
        super().validate()
        self.check_bool("allow_increasing")
        self.check_bool("mean_bound_reference")
        self._validate_reverse()
        for name in ("gamma_up", "gamma_down"):
            self.check_range(name, allowed="use a finite number (relative step change at the bound)")
            if not self.allow_increasing and getattr(self, name) < 0:
                self._fail(name, getattr(self, name), "use a number >= 0, or set allow_increasing")
        for name in ("gamma_up_dtod", "gamma_down_dtod"):
            self.check_range(name, 0, allowed="use a device-to-device spread >= 0")

    def _populate(self, state: DeviceState, generator: torch.Generator) -> None:
        shape, dtype = tuple(state.shape), state.dtype
        g_up = self.gamma_up + self.gamma_up_dtod * _randn(shape, generator, dtype)
        g_down = self.gamma_down + self.gamma_down_dtod * _randn(shape, generator, dtype)
        if not self.allow_increasing:
            g_up, g_down = g_up.abs(), g_down.abs()
        if self.mean_bound_reference:
            ref_up, ref_down = self._references(state, self.w_max, self.w_min)
        else:
            ref_up, ref_down = self._references(state, state.w_max, state.w_min)
        state.extra["slope_up"], state.extra["slope_down"] = linear_slopes(
            state.dw_up, state.dw_down, g_up, g_down, ref_up, ref_down
        )
