"""Weight modifiers for hardware-aware (HWA) training: noise, quantisation and defects applied to the
weight of each mini-batch, so that the network learns to tolerate the analog chip's imperfections.

The modifier is a pure function of the trained weight (an ordinary ``nn.Parameter``)::

    w_batch = apply_weight_modifier(w, cfg, generator)      # once per mini-batch, in forward

It returns a new tensor; the parameter itself is never overwritten. The gradient is
straight-through (d w_batch / d w = 1), except that weights removed by drop-connect get zero
gradient for that batch. Typical HWA recipe (Rasch et al. 2023, Nat. Commun. 14:5282; Le Gallo
et al. 2023, APL Mach. Learn. 1:041102): ``add_normal`` with ``std_dev`` ≈ 0.02–0.06 relative to
max|W|, on weights remapped to max|W| = 1, plus output noise in the periphery.

With ``a`` = max|W| over the whole tensor (one value per layer; ``rel_to_actual_wmax``) or
``assumed_wmax``, ξ ~ N(0, 1) drawn per element and per call, and ĝ = |w|/a (the normalised
conductance of the device that carries w in a differential pair)::

    none                   w
    discretize             a·Q(w/a)          Q: mid-tread grid of step Δ = 2·step(res), levels k·Δ
                                             inside [−1, 1]; nearest level, or unbiased stochastic
                                             rounding if sto_round
    add_normal             w + σ·a·ξ
    mult_normal            w + σ·w·ξ         (relative noise: σ is the std of w_batch/w − 1)
    mult_normal_wmax       w + σ·a·w·ξ       (the incumbent's C++/CUDA back-end variant)
    discretize_add_normal  a·Q(w/a) + σ·a·ξ
    poly                   w + σ·a·P(ĝ)·ξ    P(ĝ) = c₀ + c₁ĝ + c₂ĝ² + …  (``coeffs``)
    prog_noise             sign(w)·a·|ĝ + σ·P(ĝ)·ξ|   (as poly, but the noisy conductance is
                                             mirrored at 0, so no weight changes sign; 0 stays 0)
    pcm_noise              programming, drift and read noise of PCM at ``pcm_t_inference`` seconds
                           (see :func:`pcm_noise`), optionally drift-compensated
    drop_connect           w·m,  m_ij ~ Bernoulli(1 − pdrop)  (also applied after any other type
                           when pdrop > 0)

``step(res)``: ``res`` in (0, 1] is the step as a fraction of the full range [−a, a]; ``res`` > 1
is a number of steps (as for the DAC/ADC in :class:`analogkit.config.io.IOConfig`), so
``res = 1/254`` gives 255 levels, −127Δ … 127Δ with 127Δ = a.

Which MULT_NORMAL: the incumbent's two back-ends differ (spec §1.7): its C++/CUDA tiles draw
w·σ·a·ξ, its torch tile w·σ·ξ. ``mult_normal`` here is w·σ·ξ, because only this form makes σ a
relative error that does not change when the layer is rescaled (w·σ·a·ξ grows with the square of
the weight scale, so the same σ means different noise before and after weight remapping).
``mult_normal_wmax`` reproduces the other back-end; both agree when a = 1 (remapped weights).

Coefficient convention for ``poly``/``prog_noise``: ``coeffs`` give σ_prog/g_max as a polynomial
in ĝ. The default ``[0.0105392, 0.0768, −0.046925]`` is the incumbent's default: the PCM
programming-noise fit of Nandakumar et al. 2019 (ICECS), (0.26348, 1.9650, −1.1731) µS, divided by
g_max = 25 µS, except that 1.9650/25 = 0.0786, not 0.0768 (kept for compatibility).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

from analogkit.config.base import ConfigBase, Registry
from analogkit.config.io import resolution_step
from analogkit.inference.base import check_float_list, check_generator, polyval, randn
from analogkit.inference.converters import SinglePairConverter
from analogkit.inference.pcm import PCMLikeNoise

__all__ = [
    "WEIGHT_MODIFIERS",
    "WeightModifier",
    "apply_weight_modifier",
    "modifier_wmax",
    "discretize",
    "pcm_noise",
    "drop_connect_mask",
]

#: Modifier functions by ``WeightModifier.type``: ``fn(w, a, cfg, generator) -> w_mod`` on a
#: detached weight, ``a`` the reference weight magnitude (a tensor broadcastable to ``w``; 0 if
#: all weights are 0, so divide only where a > 0).
WEIGHT_MODIFIERS = Registry("weight modifier")

DEFAULT_POLY_COEFFS = (0.0105392, 0.0768, -0.046925)
_DISCRETIZING = ("discretize", "discretize_add_normal")


@dataclass
class WeightModifier(ConfigBase):
    """How the weight is perturbed in each training mini-batch (hardware-aware training).

    Equations in the module docstring; incumbent ``WeightModifierParameter`` (spec §1.7). Fields:

    - ``type``: one of the registered modifiers (``WEIGHT_MODIFIERS``; see module docstring).
    - ``std_dev`` (σ): noise strength, relative to ``a`` (``add_normal``, ``discretize_add_normal``,
      ``poly``, ``prog_noise``, ``mult_normal_wmax``) or to |w| (``mult_normal``).
    - ``res``, ``sto_round``: grid of ``discretize``/``discretize_add_normal`` (``res`` > 0 needed).
    - ``pdrop``: probability that a weight is removed (set to 0) for the batch; combinable.
    - ``rel_to_actual_wmax``: a = max|W| of the current weight; else ``a = assumed_wmax``.
    - ``coeffs``: polynomial of ``poly``/``prog_noise``, ascending powers of ĝ = |w|/a.
    - ``g_max`` (µS), ``pcm_t_inference`` (s after programming), ``pcm_t0`` (s),
      ``pcm_drift_compensation``: the ``pcm_noise`` modifier (see :func:`pcm_noise`).
    - ``enable_during_test``: also modify the weight in eval mode (default: training only).
    """

    type: str = "none"
    std_dev: float = 0.0
    res: float = 0.0
    sto_round: bool = False
    pdrop: float = 0.0
    rel_to_actual_wmax: bool = True
    assumed_wmax: float = 1.0
    coeffs: list[float] = field(default_factory=lambda: list(DEFAULT_POLY_COEFFS))
    g_max: float = 25.0
    pcm_t_inference: float = 0.0
    pcm_t0: float = 20.0
    pcm_drift_compensation: bool = True
    enable_during_test: bool = False

    def validate(self) -> None:
        self.check_choice("type", list(WEIGHT_MODIFIERS))
        self.check_range("std_dev", 0, allowed="use a standard deviation >= 0 (relative to the weight range)")
        self.check_range(
            "res", 0,
            allowed="use a step as a fraction of [-wmax, wmax] in (0, 1], a number of steps > 1, or 0 for none",
        )
        if self.type in _DISCRETIZING and self.res <= 0:
            self._fail("res", self.res, f"use a step in (0, 1] or a number of steps > 1 (type {self.type!r} quantises the weights)")
        for name in ("sto_round", "rel_to_actual_wmax", "pcm_drift_compensation", "enable_during_test"):
            self.check_bool(name)
        self.check_range("pdrop", 0, 1, hi_open=True, allowed="use a drop probability in [0, 1)")
        self.check_range("assumed_wmax", 0, lo_open=True, allowed="use a positive weight magnitude")
        check_float_list(self, "coeffs", what="polynomial coefficients (ascending powers of |w|/wmax)")
        self.check_range("g_max", 0, lo_open=True, allowed="use a maximal conductance > 0 (in µS)")
        self.check_range("pcm_t_inference", 0, allowed="use a time in seconds after programming, >= 0")
        self.check_range("pcm_t0", 0, lo_open=True, allowed="use a drift reference time in seconds > 0")

    def is_active(self, training: bool = True) -> bool:
        """Whether :func:`apply_weight_modifier` changes anything in this mode."""
        if not training and not self.enable_during_test:
            return False
        return self.type != "none" or self.pdrop > 0


# -- helpers ----------------------------------------------------------------------------------------
def _check_weight(w: Tensor) -> None:
    if not isinstance(w, Tensor) or not torch.is_floating_point(w):
        raise TypeError(f"apply_weight_modifier: w must be a floating-point tensor, got {type(w).__name__}"
                        + (f" of dtype {w.dtype}" if isinstance(w, Tensor) else ""))
    if w.dim() < 2:
        raise ValueError(f"apply_weight_modifier: w has shape {tuple(w.shape)}; use (out, in) or (G, out, in)")


def modifier_wmax(w: Tensor, cfg: WeightModifier) -> Tensor:
    """The reference magnitude a: max|W| over the whole tensor (per layer), or ``assumed_wmax``.

    Returned as a 0-dim tensor on ``w``'s device (no gradient); 0 if all weights are 0.
    """
    if cfg.rel_to_actual_wmax:
        return w.detach().abs().amax()
    return torch.tensor(cfg.assumed_wmax, dtype=w.dtype, device=w.device)


def _uniform(like: Tensor, generator: torch.Generator) -> Tensor:
    return torch.rand(like.shape, generator=generator, dtype=like.dtype, device=like.device)


def discretize(w: Tensor, a: Tensor | float, res: float, sto_round: bool = False,
               generator: torch.Generator | None = None) -> Tensor:
    """Quantise weights to a symmetric grid in [−a, a]: w_q = Δ·clip(round(w/Δ [+ U(−½, ½)]), ±k_max).

    Δ = 2·a·step(res) (``step`` = res if res <= 1, else 1/res), k_max = ⌊1/(2·step)⌋, so the grid
    is k·Δ for integer |k| <= k_max (0 is a level; ±a is a level when 1/step is even). Stochastic
    rounding (``sto_round``) is unbiased inside the range (Gupta et al. 2015, ICML, Eq. 2).
    """
    step = resolution_step(res)
    if step <= 0:
        return w.clone()
    a_t = torch.as_tensor(a, dtype=w.dtype, device=w.device)
    delta = 2.0 * step * torch.where(a_t > 0, a_t, torch.ones_like(a_t))
    k_max = math.floor(1.0 / (2.0 * step) + 1e-9)
    u = w / delta
    if sto_round:
        if generator is None:
            raise TypeError("discretize: stochastic rounding needs a torch.Generator")
        u = u + _uniform(u, generator) - 0.5
    return u.round().clamp(-k_max, k_max) * delta


def drop_connect_mask(w: Tensor, pdrop: float, generator: torch.Generator) -> Tensor:
    """0/1 mask (dtype of ``w``) keeping each weight with probability 1 − pdrop (Wan et al. 2013,
    "Regularization of neural networks using DropConnect", ICML). No 1/(1 − p) rescaling: a removed
    weight models a defective (stuck-at-zero) device pair."""
    return (_uniform(w, generator) >= pdrop).to(w.dtype)


@functools.lru_cache(maxsize=16)
def _pcm_model(g_max: float, t_0: float) -> PCMLikeNoise:
    return PCMLikeNoise(converter=SinglePairConverter(g_max=g_max), t_0=t_0)


def pcm_noise(w: Tensor, a: Tensor | float, generator: torch.Generator, *, g_max: float = 25.0,
              t_inference: float = 0.0, t_0: float = 20.0, drift_compensation: bool = True) -> Tensor:
    """PCM programming, drift and read noise of a differential pair, sampled afresh on any device.

    u = clip(w/a, −1, 1);  g⁺ = max(u, 0)·g_max,  g⁻ = max(−u, 0)·g_max           (targets, µS)
    each device: g_prog = programming noise(g), ν = drift exponent(g),
                 g(t) = read noise(g_prog·((t + t₀)/t₀)^(−ν))         (:class:`PCMLikeNoise`)
    w(t) = a·(g⁺(t) − g⁻(t))/g_max;  with ``drift_compensation``: w(t)·Σ|w_prog|/Σ|w(t)|, the
    global drift compensation the tile applies in eval (α = mean|y(t₀)|/mean|y(t)| read with
    one-hot inputs), with w_prog the weights right after programming.

    Source: Nandakumar et al., ICECS 2019; Joshi et al. 2020 (Nat. Commun. 11:2473, Methods);
    used as an HWA modifier by Rasch et al. 2023 (Nat. Commun. 14:5282). No gradient.
    """
    model = _pcm_model(float(g_max), float(t_0))
    t = model.check_time(t_inference)
    with torch.no_grad():
        a_t = torch.as_tensor(a, dtype=w.dtype, device=w.device)
        u = (w / torch.where(a_t > 0, a_t, torch.ones_like(a_t))).clamp(-1.0, 1.0)
        gs = (u.clamp(min=0) * g_max, (-u).clamp(min=0) * g_max)
        g_prog = [model.programming_noise(g, generator) for g in gs]
        nu = [model.drift_exponents(g, generator) for g in gs]
        g_t = [model.conductance_at(g, gp, n, t, generator) for g, gp, n in zip(gs, g_prog, nu)]
        w_t = (g_t[0] - g_t[1]) * (a_t / g_max)
        if drift_compensation:
            ref = ((g_prog[0] - g_prog[1]) * (a_t / g_max)).abs().sum()
            now = w_t.abs().sum()
            w_t = w_t * torch.where(now > 0, ref / now.clamp(min=torch.finfo(w.dtype).tiny), torch.ones_like(now))
    return w_t


# -- the registered modifiers -----------------------------------------------------------------------
ModifierFn = Callable[[Tensor, Tensor, WeightModifier, torch.Generator], Tensor]


def _register(name: str) -> Callable[[ModifierFn], ModifierFn]:
    return WEIGHT_MODIFIERS.register(name)


@_register("none")
def _none(w: Tensor, a: Tensor, cfg: WeightModifier, generator: torch.Generator) -> Tensor:
    return w


@_register("drop_connect")
def _drop_only(w: Tensor, a: Tensor, cfg: WeightModifier, generator: torch.Generator) -> Tensor:
    return w  # the drop itself is applied for every type with pdrop > 0


@_register("discretize")
def _discretize(w: Tensor, a: Tensor, cfg: WeightModifier, generator: torch.Generator) -> Tensor:
    return discretize(w, a, cfg.res, cfg.sto_round, generator)


@_register("add_normal")
def _add_normal(w: Tensor, a: Tensor, cfg: WeightModifier, generator: torch.Generator) -> Tensor:
    return w + (cfg.std_dev * a) * randn(w, generator)


@_register("mult_normal")
def _mult_normal(w: Tensor, a: Tensor, cfg: WeightModifier, generator: torch.Generator) -> Tensor:
    return w + cfg.std_dev * w * randn(w, generator)


@_register("mult_normal_wmax")
def _mult_normal_wmax(w: Tensor, a: Tensor, cfg: WeightModifier, generator: torch.Generator) -> Tensor:
    return w + (cfg.std_dev * a) * w * randn(w, generator)


@_register("discretize_add_normal")
def _discretize_add_normal(w: Tensor, a: Tensor, cfg: WeightModifier, generator: torch.Generator) -> Tensor:
    return _add_normal(discretize(w, a, cfg.res, cfg.sto_round, generator), a, cfg, generator)


def _g_hat(w: Tensor, a: Tensor) -> Tensor:
    return w.abs() / torch.where(a > 0, a, torch.ones_like(a))


@_register("poly")
def _poly(w: Tensor, a: Tensor, cfg: WeightModifier, generator: torch.Generator) -> Tensor:
    sigma = polyval(cfg.coeffs, _g_hat(w, a))
    return w + (cfg.std_dev * a) * sigma * randn(w, generator)


@_register("prog_noise")
def _prog_noise(w: Tensor, a: Tensor, cfg: WeightModifier, generator: torch.Generator) -> Tensor:
    g = _g_hat(w, a)
    g_noisy = (g + cfg.std_dev * polyval(cfg.coeffs, g) * randn(w, generator)).abs()
    return torch.sign(w) * a * g_noisy


@_register("pcm_noise")
def _pcm(w: Tensor, a: Tensor, cfg: WeightModifier, generator: torch.Generator) -> Tensor:
    return pcm_noise(w, a, generator, g_max=cfg.g_max, t_inference=cfg.pcm_t_inference,
                     t_0=cfg.pcm_t0, drift_compensation=cfg.pcm_drift_compensation)


# -- entry point ----------------------------------------------------------------------------------
def apply_weight_modifier(w: Tensor, cfg: WeightModifier, generator: torch.Generator, *,
                          training: bool = True) -> Tensor:
    """The weight seen by the crossbar in this mini-batch (noise/quantisation/defects of ``cfg``).

    ``w``: (out, in) or (G, out, in) (any leading dims; a = max|W| over the whole tensor).
    Returns a new tensor (``w`` itself if nothing applies: ``type="none"`` with ``pdrop=0``, or
    eval mode without ``enable_during_test``). Straight-through gradient:
    w_batch = m ⊙ (w_mod + w − stop_grad(w)), so d w_batch/d w = m (1, or 0 where dropped), and the
    value is exactly m ⊙ w_mod.
    Every random number comes from ``generator`` (on ``w``'s device). Equations and sources: module
    docstring.
    """
    if not isinstance(cfg, WeightModifier):
        raise TypeError(f"apply_weight_modifier: cfg must be a WeightModifier, got {type(cfg).__name__}")
    if not cfg.is_active(training):
        return w
    _check_weight(w)
    check_generator(generator, "apply_weight_modifier")
    out = w
    if cfg.type not in ("none", "drop_connect"):
        with torch.no_grad():
            wd = w.detach()
            a = modifier_wmax(wd, cfg)
            w_mod = WEIGHT_MODIFIERS.get(cfg.type)(wd, a, cfg, generator)
        out = w_mod + (w - wd)  # value exactly w_mod; gradient 1 (straight-through)
    if cfg.pdrop > 0:
        out = out * drop_connect_mask(w, cfg.pdrop, generator)
    return out
