"""ReRAM inference statistics: no power-law drift, but conductance relaxation that spreads over time.

Two models:

- :class:`ReRAMPolynomialNoise` (``"reram_wan2022"``): the spread of conductances around their
  target at a few measured times after programming, each a 4th-order polynomial σ_t(ĝ).
  Data: Wan et al., "A compute-in-memory chip based on resistive random-access memory",
  Nature 608:504 (2022) (NeuRRAM, HfOx ReRAM). **The coefficients are not printed in the paper:**
  they are the incumbent's fit to the paper's published relaxation figures (AIHWKit
  ``ReRamWan2022NoiseModel``, spec §1.12; numbers only), at 1 s, 1 day and 2 days, in µS for
  g_max = 40 µS. We could not check them against the raw data; treat them as approximate.
- :class:`ReRAMCMONoise` (``"reram_cmo"``): analog filamentary conductive-metal-oxide (CMO)/HfOx
  ReRAM of IBM Research Zurich: linear programming noise set by the program-and-verify
  acceptance range, relaxation whose mean and spread grow with ln t independently of the
  state, and 1/f read noise. Device: Falcone et al., "All-in-one analog AI hardware: on-chip
  training and inference with conductive-metal-oxide/HfOx ReRAM devices", arXiv:2502.04524
  (2025); read noise: Lombardo et al., DRC 2024. **The coefficients are the incumbent's**
  (AIHWKit ``ReRamCMONoiseModel``, spec §1.12), whose source was then "Falcone et al., in
  review"; we could not check them against the papers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor

from analogkit.inference.base import NOISE_MODELS, NoiseModel, check_float_list, polyval, randn, read_time_factor
from analogkit.inference.converters import ConductanceConverter, SingleDeviceConverter, SinglePairConverter

__all__ = ["ReRAMPolynomialNoise", "ReRAMCMONoise", "WAN2022_TIMES", "WAN2022_COEFFS"]

#: Times (s) after programming at which Wan et al. 2022 show the conductance spread.
WAN2022_TIMES = (1.0, 86400.0, 172800.0)
#: σ_t(ĝ) in µS at g_max = 40 µS, ascending powers of ĝ = g_T/g_max, one row per time above.
#: Incumbent's fit to Wan et al. 2022 (see module docstring).
WAN2022_COEFFS = (
    (0.348, 16.030, -43.853, 45.393, -16.815),
    (0.701, 22.086, -50.773, 47.095, -16.458),
    (0.782, 20.274, -43.507, 37.062, -11.934),
)


@NOISE_MODELS.register("reram_wan2022")
@dataclass
class ReRAMPolynomialNoise(NoiseModel):
    """ReRAM conductance spread σ_t(g_T) at the measured times after programming (no drift law).

    σ_k(ĝ) = (c_k0 + c_k1 ĝ + … + c_k4 ĝ⁴)·g_max/coeff_g_max_reference  (µS),  ĝ = g_T/g_max
    programming (t = times[0]):  g_prog = max(g_T + noise_scale·σ_0(ĝ)·ξ, 0)
    at t = times[k]:  g(t) = max(g_prog + noise_scale·√max(σ_k² − σ_0², 0)·ξ', 0)
    so that the spread around the target is σ_k at time k (as measured) while each device keeps
    its programming error. Other times raise ``ValueError`` (the data say nothing about them);
    ``t_inference = 0`` is read as ``times[0]`` (the chip just after programming).
    Source: Wan et al. 2022, Nature 608:504; coefficients fitted by the incumbent (see module
    docstring). No separate read-noise data exist; model short-term read noise in the periphery.

    Deviation from the incumbent: it draws g(t) = g_T + σ_k ξ afresh at every time (forgetting
    the programming error) and never applies its intended g_max/40 µS rescaling.
    """

    kind: ClassVar[str] = "reram_wan2022"

    converter: ConductanceConverter = field(default_factory=lambda: SinglePairConverter(g_max=40.0))
    times: list[float] = field(default_factory=lambda: list(WAN2022_TIMES))
    coeffs: list[list[float]] = field(default_factory=lambda: [list(c) for c in WAN2022_COEFFS])
    coeff_g_max_reference: float = 40.0
    noise_scale: float = 1.0

    def validate(self) -> None:
        super().validate()
        times = check_float_list(self, "times", lo=0.0, increasing=True, what="times in seconds")
        rows = self.coeffs
        ok = isinstance(rows, (list, tuple)) and len(rows) == len(times)
        ok = ok and all(
            isinstance(r, (list, tuple)) and len(r) >= 1
            and all(isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in r)
            for r in rows
        )
        if not ok:
            self._fail("coeffs", rows, f"use one non-empty list of finite polynomial coefficients (µS) per entry of times ({len(times)})")
        self.coeffs = [[float(c) for c in r] for r in rows]
        self.check_range("coeff_g_max_reference", 0, lo_open=True, allowed="use the g_max (µS) the coefficients were fitted at, > 0")
        self.check_range("noise_scale", 0, allowed="use a scale >= 0 (0 switches the noise off)")

    @property
    def allowed_times(self) -> list[float] | None:
        """0 (right after programming) and the measured times."""
        return [0.0] + [t for t in self.times if t != 0]

    def time_index(self, t_inference: float) -> int:
        """Index into ``times`` of ``t_inference`` (0 s counts as the first time); ValueError otherwise."""
        if t_inference == 0:
            return 0
        for k, t in enumerate(self.times):
            if math.isclose(t_inference, t, rel_tol=1e-9, abs_tol=1e-12):
                return k
        allowed = ", ".join(f"{t:g}" for t in self.times)
        raise ValueError(
            f"{type(self).__name__}: t_inference {t_inference!r} s is not covered by the data; "
            f"use one of {allowed} (s), or 0 for right after programming"
        )

    def check_time(self, t_inference: float) -> float:
        t = super().check_time(t_inference)
        self.time_index(t)
        return t

    def sigma(self, g: Tensor, k: int) -> Tensor:
        """σ_k(g_T) in µS (before ``noise_scale``), floored at 0."""
        return polyval(self.coeffs[k], g / self.g_max).clamp(min=0) * (self.g_max / self.coeff_g_max_reference)

    def programming_noise(self, g: Tensor, generator: torch.Generator) -> Tensor:
        return (g + self.noise_scale * self.sigma(g, 0) * randn(g, generator)).clamp(min=0)

    def conductance_at(
        self,
        g_target: Tensor,
        g_prog: Tensor,
        nu: Tensor,
        t_inference: float,
        generator: torch.Generator,
    ) -> Tensor:
        k = self.time_index(t_inference)
        if k == 0:
            return g_prog.clone()
        extra = (self.sigma(g_target, k) ** 2 - self.sigma(g_target, 0) ** 2).clamp(min=0).sqrt()
        return (g_prog + self.noise_scale * extra * randn(g_prog, generator)).clamp(min=0)


@NOISE_MODELS.register("reram_cmo")
@dataclass
class ReRAMCMONoise(NoiseModel):
    """CMO/HfOx ReRAM: acceptance-range programming noise, ln-time relaxation, 1/f read noise.

    programming:  σ_prog = a_0 + a_1 g_T  (µS; coefficients for the chosen acceptance range, in %)
                  g_prog = max(g_T + prog_noise_scale·σ_prog·ξ, 0)
    relaxation:   τ = max(t, 1 s);  Δμ = drift_scale·(m_0 + m_1 ln τ);  σ_rel = drift_scale·max(s_0 + s_1 ln τ, 0)
                  g_rel = g_prog + Δμ + σ_rel ξ           (independent of the state)
    read (1/f):   σ_read = read_noise_scale·K·max(log10(g_rel/1 µS), 0)·√ln((t + t_read)/(2 t_read))
                  g(t) = clip(g_rel + σ_read ξ', g_min, g_max)
    t = 0 returns g_prog (right after programming); the fits start at 1 s, so 0 < t < 1 s uses
    τ = 1 s. Default converter: one device per weight on [9, 88.2] µS (the range of the
    incumbent's CMO examples). Sources and caveats: module docstring.

    Deviations from the incumbent: its default acceptance range (0.02) is not one of its table
    keys (0.2, 2), so it silently falls back to 0.2 %; here an acceptance range must be one of
    ``acceptance_ranges`` (default 0.2 %). Its read noise uses log10(g) unclipped (negative or NaN
    below 1 µS); here the log is floored at 0.
    """

    kind: ClassVar[str] = "reram_cmo"

    converter: ConductanceConverter = field(default_factory=lambda: SingleDeviceConverter(g_max=88.2, g_min=9.0))
    acceptance_range: float = 0.2
    acceptance_ranges: list[float] = field(default_factory=lambda: [0.2, 2.0])
    prog_coeffs: list[list[float]] = field(
        default_factory=lambda: [[0.00081107, 0.00106879], [0.0112185391, 0.01129027418]]
    )
    relax_mean_coeff: list[float] = field(default_factory=lambda: [0.0, -0.08900206])
    relax_std_coeff: list[float] = field(default_factory=lambda: [0.41183342, 0.04201137])
    read_k: float = 0.0277316483
    t_read: float = 1e-6
    prog_noise_scale: float = 1.0
    drift_scale: float = 1.0
    read_noise_scale: float = 1.0

    def validate(self) -> None:
        super().validate()
        ranges = check_float_list(self, "acceptance_ranges", lo=0.0, increasing=True, what="acceptance ranges (%)")
        rows = self.prog_coeffs
        ok = isinstance(rows, (list, tuple)) and len(rows) == len(ranges)
        ok = ok and all(
            isinstance(r, (list, tuple)) and len(r) == 2
            and all(isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in r)
            for r in rows
        )
        if not ok:
            self._fail("prog_coeffs", rows, f"use one pair [a_0, a_1] (µS, µS/µS) per entry of acceptance_ranges ({len(ranges)})")
        self.prog_coeffs = [[float(c) for c in r] for r in rows]
        self.check_range("acceptance_range", 0, lo_open=True)
        if not any(math.isclose(self.acceptance_range, r, rel_tol=1e-9) for r in ranges):
            self._fail("acceptance_range", self.acceptance_range,
                       "use one of " + ", ".join(f"{r:g}" for r in ranges) + " (%), or add its coefficients to prog_coeffs")
        check_float_list(self, "relax_mean_coeff", length=2, what="coefficients [m_0, m_1] (µS)")
        check_float_list(self, "relax_std_coeff", length=2, what="coefficients [s_0, s_1] (µS)")
        self.check_range("read_k", 0, allowed="use a read-noise coefficient >= 0 (µS)")
        self.check_range("t_read", 0, lo_open=True, allowed="use a read duration in seconds > 0")
        for name in ("prog_noise_scale", "drift_scale", "read_noise_scale"):
            self.check_range(name, 0, allowed="use a scale >= 0 (0 switches this effect off)")

    def programming_sigma(self, g: Tensor) -> Tensor:
        """σ_prog(g_T) in µS for the chosen acceptance range (before ``prog_noise_scale``)."""
        k = next(i for i, r in enumerate(self.acceptance_ranges) if math.isclose(self.acceptance_range, r, rel_tol=1e-9))
        return polyval(self.prog_coeffs[k], g).clamp(min=0)

    def programming_noise(self, g: Tensor, generator: torch.Generator) -> Tensor:
        return (g + self.prog_noise_scale * self.programming_sigma(g) * randn(g, generator)).clamp(min=0)

    def relaxation_stats(self, t_inference: float) -> tuple[float, float]:
        """(Δμ, σ_rel) in µS of the relaxation at ``t_inference`` > 0 (after ``drift_scale``)."""
        log_t = math.log(max(t_inference, 1.0))
        mean = self.drift_scale * (self.relax_mean_coeff[0] + self.relax_mean_coeff[1] * log_t)
        std = self.drift_scale * max(self.relax_std_coeff[0] + self.relax_std_coeff[1] * log_t, 0.0)
        return mean, std

    def drift(self, g: Tensor, nu: Tensor, t_inference: float) -> Tensor:
        """Deterministic part of the relaxation: the mean shift Δμ(t)."""
        if t_inference == 0:
            return g
        return g + self.relaxation_stats(t_inference)[0]

    def relaxation_spread(self, g: Tensor, t_inference: float, generator: torch.Generator) -> Tensor:
        if t_inference == 0:
            return g
        return g + self.relaxation_stats(t_inference)[1] * randn(g, generator)

    def read_noise(self, g: Tensor, t_inference: float, generator: torch.Generator) -> Tensor:
        factor = self.read_noise_scale * self.read_k * read_time_factor(t_inference, self.t_read)
        log_g = torch.log10(g.clamp(min=1.0))
        return g + factor * log_g * randn(g, generator)

    def conductance_at(
        self,
        g_target: Tensor,
        g_prog: Tensor,
        nu: Tensor,
        t_inference: float,
        generator: torch.Generator,
    ) -> Tensor:
        if t_inference == 0:
            return g_prog.clone()
        g = self.relaxation_spread(self.drift(g_prog, nu, t_inference), t_inference, generator)
        return self.read_noise(g, t_inference, generator).clamp(self.g_min, self.g_max)
