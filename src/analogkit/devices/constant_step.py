"""Constant-step device: every pulse moves the weight by the element's fixed step, up to hard bounds."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from analogkit.devices.base import (
    REVERSAL_PROBABILITY_LIMIT,
    AffineStepDevice,
    DeviceState,
    _normal_cdf,
    _randn,
    register_device,
)

__all__ = ["ConstantStepDevice"]


@register_device
@dataclass
class ConstantStepDevice(AffineStepDevice):
    """Constant step with hard bounds, the reference model of resistive cross-point devices.

    Update per pulse (direction d = ±1), then clip to [b^min_ij, b^max_ij]::

        w ← w + d·Δw^d_ij·(1 + σ·ξ),   σ = dw_min_std

    Source: Gokmen & Vlasov 2016, "Acceleration of deep neural network training with resistive
    cross-point devices: design considerations", Front. Neurosci. 10:333 (d2d/c2c model, Table 1);
    parameter names and defaults as in AIHWKit's ``ConstantStepDevice`` (spec §1.8).

    ``pulse_n`` uses the exact sum nΔw + σΔw√n·ξ (see :class:`AffineStepDevice` for the one
    tiny caveat: a noisy step that reverses direction while the element sits at a bound).
    """

    kind = "constant_step"

    def _affine_dir(self, state: DeviceState, up: bool) -> tuple[Tensor, Tensor, Tensor]:
        step = state.dw_up if up else state.dw_down
        return (step if up else -step), torch.zeros_like(step), step

    def _mean_std_dir(self, state: DeviceState, w: Tensor, up: bool) -> tuple[Tensor, Tensor]:
        step = state.dw_up if up else state.dw_down
        return (step if up else -step), self.dw_min_std * step.abs()

    def _closed_form_exact(self, state: DeviceState) -> bool:
        sigma = self.dw_min_std
        return sigma == 0 or _normal_cdf(-1.0 / sigma) < REVERSAL_PROBABILITY_LIMIT

    def _pulse_n_closed(self, state: DeviceState, counts: Tensor, generator: torch.Generator) -> None:
        """w ← clip(w + d·n·Δw^d + σ·|Δw^d|·√n·ξ): the exact law of the sum of n noisy steps."""
        active = counts != 0
        n = counts.to(state.dtype)  # signed
        step = torch.where(counts > 0, state.dw_up, state.dw_down)
        new = torch.addcmul(state.w, n, step)
        if self.dw_min_std > 0:
            xi = _randn(state.shape, generator, state.dtype)
            new.addcmul_(step.abs() * n.abs().sqrt(), xi, value=self.dw_min_std)
        # elements with n = 0 get exactly +0 (w is already inside its bounds), so no mask is needed
        state.w.copy_(new.clamp_(min=state.w_min, max=state.w_max))
        self._refresh_write_noise(state, active, generator)
