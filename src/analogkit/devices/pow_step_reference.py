"""Power-step device read against a reference, optionally at its (numerically found) symmetry point."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from analogkit.devices.base import DeviceState, _randn, register_device
from analogkit.devices.pow_step import _PowFamily

__all__ = ["PowStepReferenceDevice", "pow_step_symmetry_point"]

DEFAULT_BISECTION_STEPS = 60


def pow_step_symmetry_point(
    dw_up: Tensor, dw_down: Tensor, gamma_up: Tensor, gamma_down: Tensor, b_max: Tensor, b_min: Tensor, n_iter: int
) -> Tensor:
    """Conductance g* in [b^min, b^max] where Δw⁺·ω^{γ⁺} = Δw⁻·(1 − ω)^{γ⁻}, ω = (b^max − g)/(b^max − b^min).

    Bisection (``n_iter`` halvings, computed in float64): the expected up step decreases and the
    down step increases with g, so their difference has exactly one sign change.
    """
    f64 = torch.float64
    up, down, gu, gd = dw_up.to(f64), dw_down.to(f64), gamma_up.to(f64), gamma_down.to(f64)
    hi_b, lo_b = b_max.to(f64), b_min.to(f64)
    span = (hi_b - lo_b).clamp(min=1e-300)
    lo, hi = lo_b.clone(), hi_b.clone()
    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        om = ((hi_b - mid) / span).clamp(0, 1)
        f = up * om.pow(gu) - down * (1 - om).pow(gd)
        lo = torch.where(f > 0, mid, lo)
        hi = torch.where(f > 0, hi, mid)
    return (0.5 * (lo + hi)).to(dw_up.dtype)


@register_device
@dataclass
class PowStepReferenceDevice(_PowFamily):
    """:class:`PowStepDevice` on the conductance g = w + r_ij, read as w = g − r_ij.

    The reference is r_ij = reference_mean + reference_std·ξ, plus, if ``subtract_symmetry_point``,
    the element's symmetry point g*_ij (where the expected up and down steps are equal), found by
    bisection (``n_estimation_steps`` halvings; −1 = 60). Because the power-step rule depends only on
    distances to the bounds, the update in w is the power-step rule on the shifted bounds
    [b^min − r, b^max − r]. No write noise (as the incumbent).

    Source: AIHWKit ``PowStepReferenceDevice``, which estimates g* by iterating deterministic
    up/down pulse pairs; bisection finds the root to float precision instead. Zero-shifting for
    Tiki-Taka: Gokmen & Haensch 2020, Front. Neurosci. 14:103; Wu et al. 2025 (P1, Cor. 1).
    """

    kind = "pow_step_reference"

    pow_gamma: float = 1.0
    pow_gamma_dtod: float = 0.1
    pow_up_down: float = 0.0
    pow_up_down_dtod: float = 0.0
    reference_mean: float = 0.0
    reference_std: float = 0.0
    subtract_symmetry_point: bool = False
    n_estimation_steps: int = -1

    _D2D_EXTRA: ClassVar[tuple[str, ...]] = ("corrupt_devices_prob", "reference_std")

    def validate(self) -> None:
        super().validate()
        self._validate_pow()
        self.check_bool("subtract_symmetry_point")
        self.check_range("reference_mean", allowed="use a finite number")
        self.check_range("reference_std", 0, allowed="use a standard deviation >= 0")
        self.check_int("n_estimation_steps", -1, 10_000, allowed="use -1 (default, 60) or a number of bisection steps in [1, 10000]")
        if self.n_estimation_steps == 0:
            self._fail("n_estimation_steps", 0, "use -1 (default, 60) or a number of bisection steps in [1, 10000]")

    def _populate(self, state: DeviceState, generator: torch.Generator) -> None:
        self._draw_gammas(state, generator)
        ref = self.reference_mean + self.reference_std * _randn(tuple(state.shape), generator, state.dtype)
        if self.subtract_symmetry_point:
            consistent = (state.w_max > 0) & (state.w_min < 0)
            n_iter = DEFAULT_BISECTION_STEPS if self.n_estimation_steps < 0 else self.n_estimation_steps
            sp = pow_step_symmetry_point(
                state.dw_up, state.dw_down, state.gamma_up, state.gamma_down, state.w_max, state.w_min, n_iter
            )
            ref = ref + torch.where(consistent, sp, torch.zeros_like(sp))
        state.w_max = (state.w_max - ref).contiguous()
        state.w_min = (state.w_min - ref).contiguous()
        state.extra["reference"] = ref.contiguous()
