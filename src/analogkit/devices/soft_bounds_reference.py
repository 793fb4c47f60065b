"""Soft-bounds device read against a fixed reference: w = g − r, soft bounds act on the conductance g."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from analogkit.devices.base import AffineStepDevice, DeviceState, _randn, register_device

__all__ = ["SoftBoundsReferenceDevice"]


@register_device
@dataclass
class SoftBoundsReferenceDevice(AffineStepDevice):
    """Soft-bounds device whose weight is read relative to a fixed reference conductance.

    The device conductance g = w + r_ij follows soft bounds on [b^min_ij, b^max_ij]; the array is
    read as w = g − r_ij, so the bounds of w are [b^min_ij − r_ij, b^max_ij − r_ij]::

        up:    g ← g + Δw⁺_ij·(1 − g/b^max_ij)·(1 + σξ)         (additive: + σ·Δw⁺_ij·ξ instead)
        down:  g ← g − Δw⁻_ij·(1 − g/b^min_ij)·(1 + σξ)
        r_ij = reference_mean + reference_std·ξ  (+ g*_ij if subtract_symmetry_point)
        g*_ij = (Δw⁺ − Δw⁻)/(Δw⁺/b^max − Δw⁻/b^min)                (soft-bounds symmetry point)
        slope d2d: b^max_ij ← b^max_ij/|1 + slope_up_dtod·ξ|, b^min_ij ← b^min_ij/|1 + slope_down_dtod·ξ|

    Subtracting the symmetry point zero-shifts each element, as Tiki-Taka needs for its fast array;
    ``reference_std`` models the error of programming the reference.

    Source: Gokmen & Haensch 2020 (Tiki-Taka, Front. Neurosci. 14:103) for zero-shifting; Wu et al.
    2025 (NeurIPS, arXiv:2502.06309, Cor. 1: G(0) = 0); Rasch et al. 2024 (Nat. Commun. 15:7133) for
    the reference error; parameters as AIHWKit's ``SoftBoundsReferenceDevice``. The step is affine in
    w, so the n-pulse closed form of :class:`AffineStepDevice` applies (exact only without noise).

    ``reset``/``reset_dtod`` are in units of the read weight w (reset 0 puts g at the reference,
    i.e. at the symmetry point when it is subtracted). The incumbent adds g* to the reset value in w
    units, which resets w to g* instead of 0; we do not copy that.
    """

    kind = "soft_bounds_reference"

    mult_noise: bool = False
    write_noise_std: float = 0.0
    slope_up_dtod: float = 0.0
    slope_down_dtod: float = 0.0
    reference_mean: float = 0.0
    reference_std: float = 0.0
    subtract_symmetry_point: bool = False

    _D2D_EXTRA: ClassVar[tuple[str, ...]] = ("corrupt_devices_prob", "reference_std")
    _STEP_EXTRAS: ClassVar[tuple[str, ...]] = ("reference", "slope_up", "slope_down")

    def validate(self) -> None:
        super().validate()
        self.check_bool("mult_noise")
        self.check_bool("subtract_symmetry_point")
        for name in ("slope_up_dtod", "slope_down_dtod"):
            self.check_range(name, 0, allowed="use a device-to-device spread >= 0 (relative)")
        self.check_range("reference_mean", allowed="use a finite number")
        self.check_range("reference_std", 0, allowed="use a standard deviation >= 0")

    def _mult_noise(self) -> bool:
        return self.mult_noise

    def _populate(self, state: DeviceState, generator: torch.Generator) -> None:
        shape, dtype = tuple(state.shape), state.dtype
        b_max, b_min = state.w_max, state.w_min
        consistent = (b_max > 0) & (b_min < 0)
        f_up = (1 + self.slope_up_dtod * _randn(shape, generator, dtype)).abs().clamp(min=1e-6)
        f_down = (1 + self.slope_down_dtod * _randn(shape, generator, dtype)).abs().clamp(min=1e-6)
        b_max = torch.where(consistent, b_max / f_up, b_max)
        b_min = torch.where(consistent, b_min / f_down, b_min)
        ref = self.reference_mean + self.reference_std * _randn(shape, generator, dtype)
        if self.subtract_symmetry_point:
            up, down = state.dw_up, state.dw_down
            one = torch.ones_like(b_max)
            denom = up / torch.where(consistent, b_max, one) - down / torch.where(consistent, b_min, one)
            ok = consistent & (denom > 0)
            sp = (up - down) / torch.where(ok, denom, one)
            ref = ref + torch.where(ok, sp, torch.zeros_like(sp))
        # soft-bounds slopes in conductance space (0 where a bound has the wrong sign, as for a
        # corrupted device): up step Δw⁺ + s⁺·g, down step magnitude Δw⁻ + s⁻·g
        one = torch.ones_like(b_max)
        ok_up, ok_down = b_max > 0, b_min < 0
        s_up = torch.where(ok_up, -state.dw_up / torch.where(ok_up, b_max, one), torch.zeros_like(b_max))
        s_down = torch.where(ok_down, -state.dw_down / torch.where(ok_down, b_min, one), torch.zeros_like(b_min))
        state.w_max = (b_max - ref).contiguous()
        state.w_min = (b_min - ref).contiguous()
        state.extra["reference"] = ref.contiguous()
        state.extra["slope_up"] = s_up.contiguous()
        state.extra["slope_down"] = s_down.contiguous()

    def _affine_dir(self, state: DeviceState, up: bool) -> tuple[Tensor, Tensor, Tensor]:
        # mean step in w = g − r:  up Δ⁺ + s⁺(w + r),  down −(Δ⁻ + s⁻(w + r))
        r = state.reference
        if up:
            return torch.addcmul(state.dw_up, state.slope_up, r), state.slope_up, state.dw_up
        return -torch.addcmul(state.dw_down, state.slope_down, r), -state.slope_down, state.dw_down
