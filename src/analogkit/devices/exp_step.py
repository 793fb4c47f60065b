"""Exponential-step device: the step size follows an exponential fit of the conductance response."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from analogkit.devices.base import DeviceState, PulsedDevice, register_device

__all__ = ["ExpStepDevice"]

_MAX_EXPONENT = 60.0  # keeps e^{γz} finite in float32 for weights far outside the fitted range


@register_device
@dataclass
class ExpStepDevice(PulsedDevice):
    """Step size given by an exponential fit of a measured (ReRAM, PCM) pulse response.

    Update per pulse (then clip to [b^min_ij, b^max_ij])::

        z   = 2a·w/(b^max_ij − b^min_ij) + b
        up:   w ← w + max(1 − A_up·e^{γ_up·z}, 0)·Δw⁺_ij·(1 + σξ)
        down: w ← w − max(1 − A_down·e^{−γ_down·z}, 0)·Δw⁻_ij·(1 + σξ)

    With ``dw_min_std_add`` or ``dw_min_std_slope`` ≠ 0 the cycle-to-cycle noise is instead
    additive with std σ·(σ_add + |Δw| + σ_slope·|w|) in weight units (a PCM-like noise model).
    A, γ, a, b have no d2d variation (tile-wide fit parameters).

    Source: AIHWKit ``ExpStepDevice`` (Rasch et al. 2021, arXiv:2104.02184); defaults are its fit to
    the ReRAM data of Gong et al. 2018, Nat. Commun. 9:2102. The step is non-linear in w, so
    ``pulse_n`` always loops over the pulse index (exact).
    """

    kind = "exp_step"

    A_up: float = 0.00081
    A_down: float = 0.36833
    gamma_up: float = 12.44625
    gamma_down: float = 12.78785
    a: float = 0.244
    b: float = 0.2425
    dw_min_std_add: float = 0.0
    dw_min_std_slope: float = 0.0
    write_noise_std: float = 0.0

    def validate(self) -> None:
        super().validate()
        for name in ("A_up", "A_down", "gamma_up", "gamma_down", "a", "b"):
            self.check_range(name, allowed="use a finite number (fit parameter)")
        for name in ("dw_min_std_add", "dw_min_std_slope"):
            self.check_range(name, 0, allowed="use a number >= 0")

    @property
    def complex_noise(self) -> bool:
        """Whether the additive σ·(σ_add + |Δw| + σ_slope·|w|) noise model is active."""
        return self.dw_min_std > 0 and (self.dw_min_std_add != 0 or self.dw_min_std_slope != 0)

    def _mean_std_dir(self, state: DeviceState, w: Tensor, up: bool) -> tuple[Tensor, Tensor]:
        span = state.w_max - state.w_min
        ok = span > 0
        z = 2 * self.a * w / torch.where(ok, span, torch.ones_like(span)) + self.b
        if up:
            y = (1 - self.A_up * torch.exp((self.gamma_up * z).clamp(max=_MAX_EXPONENT))).clamp(min=0)
            mean = y * state.dw_up
        else:
            y = (1 - self.A_down * torch.exp((-self.gamma_down * z).clamp(max=_MAX_EXPONENT))).clamp(min=0)
            mean = -y * state.dw_down
        mean = torch.where(ok, mean, torch.zeros_like(mean))
        if self.complex_noise:
            std = self.dw_min_std * (mean.abs() + self.dw_min_std_add + self.dw_min_std_slope * w.abs())
            std = torch.where(ok, std, torch.zeros_like(std))
        else:
            std = self.dw_min_std * mean.abs()
        return mean, std
