"""A generic device model whose drift and read-noise statistics do not depend on the conductance.

Incumbent: ``StateIndependentNoiseModel`` (spec §1.12; same drift and 1/f forms as the PCM model
of Nandakumar et al., ICECS 2019, with constant parameters)::

    programming:  σ_prog = c_0 + c_1 ĝ + c_2 ĝ² (µS; default c = [0.2, 0, 0], i.e. constant 0.2 µS)
                  g_prog = max(g_T + prog_noise_scale·σ_prog·ξ, 0)
    drift coeff:  ν = drift_scale·|ν_mean + ν_std ξ|           (same law for every device)
    drift:        g_drift = g_prog·((t + t_0)/t_0)^(−ν)
    read (1/f):   g(t) = max(g_drift + read_noise_scale·Q·|g_drift|·√ln((t + t_0 + t_read)/(2 t_read))·ξ, 0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor

from analogkit.inference.base import NOISE_MODELS, NoiseModel, check_float_list, polyval, randn, read_time_factor

__all__ = ["StateIndependentNoise"]


@NOISE_MODELS.register("state_independent")
@dataclass
class StateIndependentNoise(NoiseModel):
    """Programming noise, drift exponent and relative read noise that are the same for every state.

    Equations in the module docstring. Fields: ``prog_coeff`` (µS, ascending powers of ĝ; not
    rescaled with g_max, as in the incumbent), ``drift_nu_mean`` 0.1, ``drift_nu_std`` 0.05,
    ``t_0`` 20 s, ``t_read`` 250 ns, ``read_noise_q`` = Q, the relative 1/f amplitude, and the
    scales ``prog_noise_scale``, ``drift_scale``, ``read_noise_scale``.

    ``read_noise_q`` defaults to 0.04 = 1/25: the incumbent writes σ_read = ρ·|g_drift|/g_max·√…
    (µS), which equals this model with Q = 1 µS/g_max; at its default g_max = 25 µS that is 0.04.
    We keep Q fixed when g_max changes (the incumbent's relative noise scales as 1/g_max).
    """

    kind: ClassVar[str] = "state_independent"

    prog_coeff: list[float] = field(default_factory=lambda: [0.2, 0.0, 0.0])
    prog_noise_scale: float = 1.0
    drift_nu_mean: float = 0.1
    drift_nu_std: float = 0.05
    drift_scale: float = 1.0
    t_0: float = 20.0
    read_noise_q: float = 0.04
    read_noise_scale: float = 1.0
    t_read: float = 250e-9

    def validate(self) -> None:
        super().validate()
        check_float_list(self, "prog_coeff", what="polynomial coefficients (µS, ascending powers of g/g_max)")
        for name in ("prog_noise_scale", "drift_scale", "read_noise_scale"):
            self.check_range(name, 0, allowed="use a scale >= 0 (0 switches this effect off)")
        self.check_range("drift_nu_mean", 0, allowed="use a mean drift exponent >= 0")
        self.check_range("drift_nu_std", 0, allowed="use a standard deviation >= 0")
        self.check_range("read_noise_q", 0, allowed="use a relative read-noise amplitude >= 0")
        self.check_range("t_0", 0, lo_open=True, allowed="use a drift reference time in seconds > 0")
        self.check_range("t_read", 0, lo_open=True, allowed="use a read duration in seconds > 0")

    def programming_noise(self, g: Tensor, generator: torch.Generator) -> Tensor:
        sigma = self.prog_noise_scale * polyval(self.prog_coeff, g / self.g_max).clamp(min=0)
        return (g + sigma * randn(g, generator)).clamp(min=0)

    def drift_exponents(self, g: Tensor, generator: torch.Generator) -> Tensor:
        return self.drift_scale * (self.drift_nu_mean + self.drift_nu_std * randn(g, generator)).abs()

    def drift(self, g: Tensor, nu: Tensor, t_inference: float) -> Tensor:
        return g * ((t_inference + self.t_0) / self.t_0) ** (-nu)

    def read_noise(self, g: Tensor, t_inference: float, generator: torch.Generator) -> Tensor:
        sigma = self.read_noise_scale * self.read_noise_q * read_time_factor(t_inference + self.t_0, self.t_read)
        return (g + g.abs() * sigma * randn(g, generator)).clamp(min=0)
