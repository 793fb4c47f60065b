"""Soft-bounds device parameterised by its pulse response: pulses to sweep the range and the rate α."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from analogkit.devices.base import register_device
from analogkit.devices.soft_bounds import SoftBoundsDevice

__all__ = ["SoftBoundsPmaxDevice"]


@register_device
@dataclass
class SoftBoundsPmaxDevice(SoftBoundsDevice):
    """Soft bounds described by the measured pulse response instead of step and bounds.

    Without noise and d2d variation, p up pulses from ``range_min`` and p down pulses from
    ``range_max`` give exactly (at every integer p)::

        up:    w(p) = range_min + B·(1 − e^{−αp})
        down:  w(p) = range_max − B·(1 − e^{−αp}),      B = (range_max − range_min)/(1 − e^{−α·p_max})

    so ``p_max`` pulses sweep the whole range. This is a :class:`SoftBoundsDevice` with
    (derived, not settable)::

        w_max = range_min + B,   w_min = range_max − B,
        Δw⁺ = w_max·(1 − e^{−α}),  Δw⁻ = |w_min|·(1 − e^{−α})
        dw_min = max(Δw⁺, Δw⁻),    up_down = 1 − Δw⁻/Δw⁺ (if Δw⁺ >= Δw⁻) else Δw⁺/Δw⁻ − 1

    Note: AIHWKit's ``SoftBoundsPmaxDevice`` converts with w_min = range_min, dw_min = B·α and
    up_down = 1 + 2·range_min/B, which does not reproduce the response it documents when
    range_min ≠ 0 (its down branch saturates at range_min); the conversion above does, and uses
    the per-pulse factor e^{−α} so that the formula holds at integer pulse counts, not only for α → 0.
    Device-to-device parameters (``dw_min_dtod``, ``w_max_dtod``, …) act on the derived values.

    Source: the exponential-saturation pulse response of soft-bounds devices (Fusi & Abbott 2007,
    Nat. Neurosci. 10:485), in the fitting parameterisation of AIHWKit's ``SoftBoundsPmaxDevice``.
    """

    kind = "soft_bounds_pmax"

    p_max: int = 1000
    alpha: float = 0.0005
    range_min: float = -1.0
    range_max: float = 1.0

    # derived in __post_init__ (not constructor arguments, not serialised)
    dw_min: float = field(default=0.0, init=False)
    up_down: float = field(default=0.0, init=False)
    w_max: float = field(default=0.0, init=False)
    w_min: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self.check_int("p_max", 1, allowed="use an integer >= 1 (pulses to sweep the range)")
        self.check_range("alpha", 0, lo_open=True, allowed="use a rate > 0 (per pulse)")
        self.check_range("range_min", hi=0, allowed="use a number <= 0 (the range must contain 0)")
        self.check_range("range_max", 0, allowed="use a number >= 0 (the range must contain 0)")
        if not self.range_min < self.range_max:
            self._fail("range_min", self.range_min, f"use a number below range_max = {self.range_max}")
        b = (self.range_max - self.range_min) / -math.expm1(-self.alpha * self.p_max)
        rate = -math.expm1(-self.alpha)
        self.w_max = self.range_min + b
        self.w_min = self.range_max - b
        up, down = self.w_max * rate, -self.w_min * rate
        self.dw_min = max(up, down)
        self.up_down = 1 - down / up if up >= down else up / down - 1
        super().__post_init__()

    @property
    def b_factor(self) -> float:
        """B = (range_max − range_min)/(1 − e^{−α·p_max})."""
        return (self.range_max - self.range_min) / -math.expm1(-self.alpha * self.p_max)
