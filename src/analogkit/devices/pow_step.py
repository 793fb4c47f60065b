"""Power-step device: the step scales with a power of the distance to the bound."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from analogkit.devices.base import DeviceState, PulsedDevice, _randn, register_device

__all__ = ["PowStepDevice"]


class _PowFamily(PulsedDevice):
    """Shared rule of PowStep and PowStepReference (exponents stored as ``gamma_up``/``gamma_down``)."""

    _STEP_EXTRAS: ClassVar[tuple[str, ...]] = ("gamma_up", "gamma_down")

    pow_gamma: float
    pow_gamma_dtod: float
    pow_up_down: float
    pow_up_down_dtod: float

    def _validate_pow(self) -> None:
        self.check_range("pow_gamma", 0, lo_open=True, allowed="use an exponent > 0")
        self.check_range("pow_gamma_dtod", 0, allowed="use a device-to-device spread >= 0 (relative)")
        self.check_range(
            "pow_up_down", -1, 1, lo_open=True, hi_open=True,
            allowed="use a number in (-1, 1): the relative bias of the up over the down exponent",
        )
        self.check_range("pow_up_down_dtod", 0, allowed="use a device-to-device spread >= 0")

    def _draw_gammas(self, state: DeviceState, generator: torch.Generator) -> None:
        shape, dtype = tuple(state.shape), state.dtype
        gain = 1 + self.pow_gamma_dtod * _randn(shape, generator, dtype)
        r = self.pow_up_down_dtod * _randn(shape, generator, dtype)
        g_up = self.pow_gamma * (min(self.pow_up_down, 0.0) + gain + r)
        g_down = self.pow_gamma * (-max(self.pow_up_down, 0.0) + gain - r)
        if self.enforce_consistency:
            g_up, g_down = g_up.abs(), g_down.abs()
        state.extra["gamma_up"] = g_up.contiguous()
        state.extra["gamma_down"] = g_down.contiguous()

    def _mean_std_dir(self, state: DeviceState, w: Tensor, up: bool) -> tuple[Tensor, Tensor]:
        span = state.w_max - state.w_min
        ok = span > 0
        span = torch.where(ok, span, torch.ones_like(span))
        if up:
            frac = ((state.w_max - w) / span).clamp(0, 1)
            mean = state.dw_up * frac.pow(state.gamma_up)
        else:
            frac = ((w - state.w_min) / span).clamp(0, 1)
            mean = -state.dw_down * frac.pow(state.gamma_down)
        mean = torch.where(ok, mean, torch.zeros_like(mean))
        return mean, self.dw_min_std * mean.abs()


@register_device
@dataclass
class PowStepDevice(_PowFamily):
    """Step proportional to a power of the relative distance to the bound it moves towards.

    With ω = (b^max_ij − w)/(b^max_ij − b^min_ij), per pulse (then clip)::

        up:    w ← w + Δw⁺_ij·ω^{γ⁺_ij}·(1 + σξ)
        down:  w ← w − Δw⁻_ij·(1 − ω)^{γ⁻_ij}·(1 + σξ)
        γ^±_ij = pow_gamma·(1 ± β_ij + pow_gamma_dtod·ξ),  β_ij from pow_up_down (+ pow_up_down_dtod·ξ)

    γ = 1 is soft bounds with steps normalised to the range. Source: a shifted form of the synapse
    model of Fusi & Abbott 2007 (Nat. Neurosci. 10:485), see also Frascaroli et al. 2018
    (Sci. Rep. 8:7178); parameters as AIHWKit's ``PowStepDevice``. Non-linear in w: ``pulse_n``
    loops over the pulse index (exact).
    """

    kind = "pow_step"

    pow_gamma: float = 1.0
    pow_gamma_dtod: float = 0.1
    pow_up_down: float = 0.0
    pow_up_down_dtod: float = 0.0
    write_noise_std: float = 0.0

    def validate(self) -> None:
        super().validate()
        self._validate_pow()

    def _populate(self, state: DeviceState, generator: torch.Generator) -> None:
        self._draw_gammas(state, generator)
