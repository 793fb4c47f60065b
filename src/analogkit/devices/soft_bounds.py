"""Soft-bounds device: the step shrinks linearly to zero at each element's own bound."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from analogkit.devices.base import DeviceState, register_device
from analogkit.devices.linear_step import _LinearFamily, linear_slopes

__all__ = ["SoftBoundsDevice"]


@register_device
@dataclass
class SoftBoundsDevice(_LinearFamily):
    """Soft bounds: steps decrease linearly with the weight and vanish at the element's bounds.

    Update per pulse (then clip to [b^min_ij, b^max_ij])::

        up:    w ← w + Δw⁺_ij·(1 − w/b^max_ij)·(1 + σξ)
        down:  w ← w − Δw⁻_ij·(1 − w/b^min_ij)·(1 + σξ)
        (additive noise, mult_noise=False:  w ± (Δw·(1 − w/b) + σ·Δw·ξ))

    i.e. :class:`LinearStepDevice` with γ = 1, no γ variation and the actual bounds as reference.
    Response-function view (Wu et al. 2025, P1): q₊ = 1 − w/b^max, q₋ = 1 − w/b^min; symmetry
    point w* = (Δw⁺ − Δw⁻)/(Δw⁺/b^max − Δw⁻/b^min).

    Source: soft-bounds conductance response as in Fusi & Abbott 2007 (Nat. Neurosci. 10:485) and
    Gokmen & Haensch 2020 (Tiki-Taka, Front. Neurosci. 14:103); parameters as AIHWKit's
    ``SoftBoundsDevice``. n pulses: the mean is geometric, w_n = b − (b − w₀)(1 − Δw/b)ⁿ; with
    cycle-to-cycle noise the distribution has no exact closed form with clipping, so ``pulse_n``
    loops exactly unless ``method="closed_form"`` is asked for (see :class:`AffineStepDevice`).
    """

    kind = "soft_bounds"

    mult_noise: bool = True
    write_noise_std: float = 0.0
    reverse_up: bool = False
    reverse_down: bool = False
    reverse_offset: float = 0.01

    def validate(self) -> None:
        super().validate()
        self._validate_reverse()

    def _populate(self, state: DeviceState, generator: torch.Generator) -> None:
        ref_up, ref_down = self._references(state, state.w_max, state.w_min)
        state.extra["slope_up"], state.extra["slope_down"] = linear_slopes(
            state.dw_up, state.dw_down, 1.0, 1.0, ref_up, ref_down
        )
