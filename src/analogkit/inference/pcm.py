"""Phase-change memory (PCM) inference statistics: programming noise, power-law drift, 1/f read noise.

Source: the statistical PCM model of Nandakumar et al., "Phase-change memory models for deep
learning training and inference", ICECS 2019 (fitted on ~1M devices of an IBM PCM chip), as used
in Joshi et al. 2020 (Nat. Commun. 11:2473, Methods), Rasch et al. 2023 (Nat. Commun. 14:5282)
and the incumbent's ``PCMLikeNoiseModel`` (spec §1.12). With ĝ = g_T/g_max and natural logs::

    programming:  σ_prog = (0.26348 + 1.9650 ĝ − 1.1731 ĝ²) · g_max/25 µS
                  g_prog = max(g_T + prog_noise_scale·σ_prog·ξ, 0)
    drift coeff:  μ_ν = clip(−0.0155 ln ĝ + 0.0244, 0.049, 0.1)
                  σ_ν = clip(−0.0125 ln ĝ − 0.0059, 0.008, 0.045)      (ĝ floored at 1e-7)
                  ν   = drift_scale·|μ_ν + σ_ν ξ|                      (once, at programming)
    drift:        g_drift = g_prog·((t + t_0)/t_0)^(−ν)                (t = seconds after programming)
    read (1/f):   Q_s = min(0.0088/max((|g_prog|/g_max)^0.65, 1e-3), 0.2)
                  σ_read = Q_s·√ln((t + t_0 + t_read)/(2 t_read))
                  g(t) = max(g_drift + read_noise_scale·|g_drift|·σ_read·ξ, 0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor

from analogkit.inference.base import (
    NOISE_MODELS,
    NoiseModel,
    check_float_list,
    interp1d,
    polyval,
    randn,
    read_time_factor,
)

__all__ = ["PCMLikeNoise", "CustomDriftPCMNoise", "PCM_PROG_COEFF"]

#: σ_prog polynomial in µS at g_max = 25 µS, ascending powers of ĝ (Nandakumar et al. 2019).
PCM_PROG_COEFF = (0.26348, 1.9650, -1.1731)
# Drift exponent statistics: μ_ν = a + b ln ĝ clipped to [lo, hi]; same for σ_ν (Nandakumar et al. 2019).
_NU_MEAN = (0.0244, -0.0155, 0.049, 0.1)
_NU_STD = (-0.0059, -0.0125, 0.008, 0.045)
_G_HAT_FLOOR = 1e-7
# 1/f read noise: Q_s = min(a / max(ĝ_prog^b, floor), cap) (Nandakumar et al. 2019; Joshi et al. 2020).
_READ_Q = (0.0088, 0.65, 1e-3, 0.2)


@NOISE_MODELS.register("pcm")
@dataclass
class PCMLikeNoise(NoiseModel):
    """PCM inference statistics (programming noise, conductance-dependent drift, 1/f read noise).

    Equations in the module docstring; source Nandakumar et al., ICECS 2019 (as in the incumbent's
    ``PCMLikeNoiseModel``, spec §1.12). Fields:

    - ``converter``: weight ↔ conductance mapping; its ``g_max`` (default 25 µS) normalises ĝ.
    - ``prog_coeff``: σ_prog polynomial in µS, ascending powers of ĝ, valid at
      ``prog_coeff_g_max_reference`` (25 µS); σ_prog is scaled by g_max/reference
      (``None``: no rescaling, the coefficients are for this g_max).
    - ``t_read`` (250 ns), ``t_0`` (20 s): read duration and drift reference time.
    - ``prog_noise_scale``, ``read_noise_scale``, ``drift_scale``: multiply σ_prog, σ_read and ν.
    """

    kind: ClassVar[str] = "pcm"

    prog_coeff: list[float] = field(default_factory=lambda: list(PCM_PROG_COEFF))
    prog_coeff_g_max_reference: float | None = 25.0
    t_read: float = 250e-9
    t_0: float = 20.0
    prog_noise_scale: float = 1.0
    read_noise_scale: float = 1.0
    drift_scale: float = 1.0

    def validate(self) -> None:
        super().validate()
        check_float_list(self, "prog_coeff", what="polynomial coefficients (µS, ascending powers of g/g_max)")
        if self.prog_coeff_g_max_reference is not None:
            self.check_range("prog_coeff_g_max_reference", 0, lo_open=True,
                             allowed="use the g_max (µS) the coefficients were fitted at, > 0, or null for no rescaling")
        self.check_range("t_read", 0, lo_open=True, allowed="use a read duration in seconds > 0")
        self.check_range("t_0", 0, lo_open=True, allowed="use a drift reference time in seconds > 0")
        for name in ("prog_noise_scale", "read_noise_scale", "drift_scale"):
            self.check_range(name, 0, allowed="use a scale >= 0 (0 switches this effect off)")

    # -- programming -----------------------------------------------------------------
    def programming_sigma(self, g: Tensor) -> Tensor:
        """σ_prog(g_T) in µS (before ``prog_noise_scale``), floored at 0."""
        ref = self.prog_coeff_g_max_reference
        factor = 1.0 if ref is None else self.g_max / ref
        return polyval(self.prog_coeff, g / self.g_max).clamp(min=0) * factor

    def programming_noise(self, g: Tensor, generator: torch.Generator) -> Tensor:
        sigma = self.prog_noise_scale * self.programming_sigma(g)
        return (g + sigma * randn(g, generator)).clamp(min=0)

    # -- drift -----------------------------------------------------------------------
    def drift_exponent_stats(self, g: Tensor) -> tuple[Tensor, Tensor]:
        """(μ_ν, σ_ν) of the drift exponent for target conductance ``g`` (before ``drift_scale``)."""
        log_g = torch.log((g / self.g_max).clamp(min=_G_HAT_FLOOR))
        a, b, lo, hi = _NU_MEAN
        mean = (a + b * log_g).clamp(lo, hi)
        a, b, lo, hi = _NU_STD
        std = (a + b * log_g).clamp(lo, hi)
        return mean, std

    def drift_exponents(self, g: Tensor, generator: torch.Generator) -> Tensor:
        mean, std = self.drift_exponent_stats(g)
        return self.drift_scale * (mean + std * randn(g, generator)).abs()

    def drift(self, g: Tensor, nu: Tensor, t_inference: float) -> Tensor:
        return g * ((t_inference + self.t_0) / self.t_0) ** (-nu)

    # -- read noise --------------------------------------------------------------------
    def read_noise_q(self, g_prog: Tensor) -> Tensor:
        """Q_s(g_prog): relative 1/f read-noise amplitude (dimensionless)."""
        a, b, floor, cap = _READ_Q
        return (a / ((g_prog.abs() / self.g_max) ** b).clamp(min=floor)).clamp(max=cap)

    def read_sigma(self, g_prog: Tensor, t_inference: float) -> Tensor:
        """σ_read relative to |g_drift| at ``t_inference`` (before ``read_noise_scale``)."""
        return self.read_noise_q(g_prog) * read_time_factor(t_inference + self.t_0, self.t_read)

    def read_noise(
        self,
        g: Tensor,
        t_inference: float,
        generator: torch.Generator,
        g_prog: Tensor | None = None,
    ) -> Tensor:
        """Add 1/f read noise to drifted conductances ``g``; Q_s uses ``g_prog`` (``g`` if not given)."""
        sigma = self.read_noise_scale * self.read_sigma(g if g_prog is None else g_prog, t_inference)
        return (g + g.abs() * sigma * randn(g, generator)).clamp(min=0)

    def conductance_at(
        self,
        g_target: Tensor,
        g_prog: Tensor,
        nu: Tensor,
        t_inference: float,
        generator: torch.Generator,
    ) -> Tensor:
        return self.read_noise(self.drift(g_prog, nu, t_inference), t_inference, generator, g_prog=g_prog)


@NOISE_MODELS.register("pcm_custom_drift")
@dataclass
class CustomDriftPCMNoise(PCMLikeNoise):
    """PCM model with a user-given drift-exponent curve ν(g) instead of the fitted one.

    μ_ν(g_T) = interp(g_T; g_lst, nu_mean_lst),  σ_ν(g_T) = interp(g_T; g_lst, nu_std_lst)
    (piece-wise linear in g_T in µS, constant beyond the ends);  ν = drift_scale·|μ_ν + σ_ν ξ|.
    Programming and read noise as :class:`PCMLikeNoise`. Incumbent:
    ``CustomDriftPCMLikeNoiseModel`` (spec §1.12). The default curve is only illustrative
    (ν falling from 0.1 at 0 µS to 0.05 at 25 µS); give your measured curve.
    """

    kind: ClassVar[str] = "pcm_custom_drift"

    g_lst: list[float] = field(default_factory=lambda: [0.0, 25.0])
    nu_mean_lst: list[float] = field(default_factory=lambda: [0.1, 0.05])
    nu_std_lst: list[float] = field(default_factory=lambda: [0.045, 0.008])

    def validate(self) -> None:
        super().validate()
        g = check_float_list(self, "g_lst", lo=0.0, increasing=True, what="conductances (µS)")
        check_float_list(self, "nu_mean_lst", length=len(g), lo=0.0, what="drift-exponent means (one per g_lst entry)")
        check_float_list(self, "nu_std_lst", length=len(g), lo=0.0, what="drift-exponent stds (one per g_lst entry)")

    def drift_exponent_stats(self, g: Tensor) -> tuple[Tensor, Tensor]:
        return interp1d(g, self.g_lst, self.nu_mean_lst), interp1d(g, self.g_lst, self.nu_std_lst)
