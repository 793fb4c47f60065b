"""Weight ↔ conductance converters: how a logical weight is stored on one or more physical devices.

A converter maps a weight tensor ``w`` (the tile's matrix, shape ``(..., out, in)``) to a list of
conductance tensors in µS, one per device of the unit cell, plus the parameters needed to map
back (``params``: a dict of plain tensors, saved with the programmed state)::

    gs, params = converter.to_conductances(w)        # list of tensors, each shaped like w
    w_back = converter.from_conductances(gs, params)  # equals w up to float rounding

Without noise the round trip is exact. Noise models (``analogkit.inference.noise_models``) perturb
the conductances between the two calls.

The scale ``s`` (µS per unit weight) is set by the largest weight magnitude, chosen by
``granularity``: ``"layer"`` (one ``s`` for the whole tensor), ``"tile"`` (one per matrix in the
last two dimensions, for a batched tile grid ``(row_tiles, col_tiles, out, in)``) or
``"column"`` (one per output, i.e. per crossbar column: the max over the last dimension, as with
column-wise weight scaling; spec §1.5). The max is floored at the dtype's machine epsilon, so an
all-zero weight maps to ``g_min`` without dividing by zero.

Sources: single pair ``s = (g_max − g_min)/max|W|``, ``g± = clip(±s·W, 0, g_max − g_min) + g_min``
(incumbent ``SinglePairConductanceConverter``, spec §1.12; Joshi et al. 2020, Nat. Commun. 11:2473,
differential PCM pair). Multiple pairs with significance factors ``F``: Ambrogio et al. 2018,
Nature 558:60 (``W ∝ F·(G⁺ − G⁻) + (g⁺ − g⁻)``); Mackin et al. 2022, Nat. Commun. 13:3765.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor

from analogkit.config.base import ConfigBase, Registry

CONVERTERS = Registry("conductance converter")

GRANULARITIES = ("layer", "tile", "column")

__all__ = [
    "CONVERTERS",
    "GRANULARITIES",
    "ConductanceConverter",
    "SinglePairConverter",
    "NPairConverter",
    "DualPairConverter",
    "SingleDeviceConverter",
]


def _floor(w: Tensor) -> float:
    if not torch.is_floating_point(w):
        raise TypeError(f"conductance converters need a floating-point weight tensor, got dtype {w.dtype}")
    return float(torch.finfo(w.dtype).eps)


def _reduce(w: Tensor, granularity: str, op: str) -> Tensor:
    """Reduce ``w`` with ``op`` ("amax"/"amin") over the dimensions that share one scale; keepdim."""
    fn = torch.amax if op == "amax" else torch.amin
    if granularity == "column" and w.dim() >= 1:
        return fn(w, dim=-1, keepdim=True)
    if granularity == "tile" and w.dim() >= 2:
        return fn(w, dim=(-2, -1), keepdim=True)
    return fn(w)


@dataclass
class ConductanceConverter(ConfigBase):
    """Base class: maps weights to a list of conductance tensors (µS) and back.

    Subclasses set ``kind``, implement :meth:`to_conductances` / :meth:`from_conductances` and
    :attr:`n_conductances`, and register with ``CONVERTERS.add(kind, cls)``.
    """

    g_max: float = 25.0
    g_min: float = 0.0
    granularity: str = "layer"

    def validate(self) -> None:
        self.check_range("g_max", 0, lo_open=True, allowed="use a maximal conductance > 0 (in µS)")
        self.check_range("g_min", 0, allowed="use a minimal conductance >= 0 (in µS)")
        if self.g_min >= self.g_max:
            self._fail("g_min", self.g_min, f"use a value below g_max ({self.g_max})")
        self.check_choice("granularity", GRANULARITIES)

    @property
    def n_conductances(self) -> int:
        """Number of conductance tensors (devices per weight)."""
        raise NotImplementedError

    def to_conductances(self, w: Tensor) -> tuple[list[Tensor], dict[str, Tensor]]:
        raise NotImplementedError

    def from_conductances(self, gs: list[Tensor], params: dict[str, Tensor]) -> Tensor:
        raise NotImplementedError

    # -- helpers ----------------------------------------------------------------------
    def _abs_max(self, w: Tensor) -> Tensor:
        return _reduce(w.abs(), self.granularity, "amax").clamp(min=_floor(w))

    def _check_gs(self, gs: list[Tensor] | tuple[Tensor, ...], params: dict[str, Tensor], keys: tuple[str, ...]) -> None:
        name = type(self).__name__
        if not isinstance(gs, (list, tuple)) or len(gs) != self.n_conductances:
            got = len(gs) if isinstance(gs, (list, tuple)) else type(gs).__name__
            raise ValueError(f"{name}.from_conductances: got {got} conductance tensors; use {self.n_conductances}")
        missing = [k for k in keys if k not in params]
        if missing:
            raise ValueError(f"{name}.from_conductances: params lack {', '.join(missing)}; pass the params returned by to_conductances")


def _fill_pairs(u: Tensor, f_lst: list[float], g_min: float, span: float) -> list[Tensor]:
    """Split signed magnitudes ``u`` (µS of weight) over pairs of significance ``f_lst``, filling the
    pairs in the order given: pair i holds ``clip(|u| − L_i, 0, f_i·span)/f_i`` above ``g_min`` on
    the side of the sign of ``u`` (``L_i`` = range of the pairs before it)."""
    pos = u.clamp(min=0)
    neg = (-u).clamp(min=0)
    gs: list[Tensor] = []
    lower = 0.0
    for f in f_lst:
        gs.append(((pos - lower).clamp(0, f * span) / f) + g_min)
        gs.append(((neg - lower).clamp(0, f * span) / f) + g_min)
        lower += f * span
    return gs


def _sum_pairs(gs: list[Tensor], f_lst: list[float]) -> Tensor:
    u = torch.zeros_like(gs[0])
    for f, g_plus, g_minus in zip(f_lst, gs[0::2], gs[1::2]):
        u = u + f * (g_plus - g_minus)
    return u


@CONVERTERS.register("single_pair")
@dataclass
class SinglePairConverter(ConductanceConverter):
    """One differential pair per weight: positive weights on g⁺, negative on g⁻, the other at g_min.

    s = (g_max − g_min)/max|W|;  g⁺ = clip(s·W, 0, g_max − g_min) + g_min;
    g⁻ = clip(−s·W, 0, g_max − g_min) + g_min;  W = (g⁺ − g⁻)/s.
    Source: incumbent ``SinglePairConductanceConverter`` (spec §1.12); Joshi et al. 2020,
    Nat. Commun. 11:2473 (differential PCM pair, G_max = 25 µS).
    """

    kind: ClassVar[str] = "single_pair"

    @property
    def n_conductances(self) -> int:
        return 2

    def to_conductances(self, w: Tensor) -> tuple[list[Tensor], dict[str, Tensor]]:
        span = self.g_max - self.g_min
        scale = span / self._abs_max(w)
        return _fill_pairs(w * scale, [1.0], self.g_min, span), {"scale": scale}

    def from_conductances(self, gs: list[Tensor], params: dict[str, Tensor]) -> Tensor:
        self._check_gs(gs, params, ("scale",))
        return (gs[0] - gs[1]) / params["scale"]


@CONVERTERS.register("n_pair")
@dataclass
class NPairConverter(ConductanceConverter):
    """N differential pairs per weight with significance factors F_i, filled in list order.

    s = Σ_i F_i (g_max − g_min) / max|W|;  with u = s·W and L_i = Σ_{j<i} F_j (g_max − g_min):
    g±_i = clip(±u − L_i, 0, F_i (g_max − g_min))/F_i + g_min;  W = Σ_i F_i (g⁺_i − g⁻_i)/s.
    Put the lowest significance first: small weights then use only that pair, so its noise is
    not amplified by a large F (incumbent ``NPairConductanceConverter``, spec §1.12). Source of
    the significance scheme: Ambrogio et al. 2018, Nature 558:60; Mackin et al. 2022,
    Nat. Commun. 13:3765. Conductances are returned as [g⁺_0, g⁻_0, g⁺_1, g⁻_1, …].
    """

    kind: ClassVar[str] = "n_pair"

    f_lst: list[float] = field(default_factory=lambda: [1.0, 3.0])

    def validate(self) -> None:
        super().validate()
        _check_factors(self, self.n_pairs_required())

    def n_pairs_required(self) -> int | None:
        return None

    @property
    def n_conductances(self) -> int:
        return 2 * len(self.f_lst)

    def to_conductances(self, w: Tensor) -> tuple[list[Tensor], dict[str, Tensor]]:
        span = self.g_max - self.g_min
        scale = sum(self.f_lst) * span / self._abs_max(w)
        return _fill_pairs(w * scale, self.f_lst, self.g_min, span), {"scale": scale}

    def from_conductances(self, gs: list[Tensor], params: dict[str, Tensor]) -> Tensor:
        self._check_gs(gs, params, ("scale",))
        return _sum_pairs(list(gs), self.f_lst) / params["scale"]


def _check_factors(cfg: NPairConverter, n_required: int | None) -> None:
    value = cfg.f_lst
    ok = isinstance(value, (list, tuple)) and len(value) >= 1
    ok = ok and all(isinstance(f, (int, float)) and not isinstance(f, bool) and f > 0 and f < float("inf") for f in value)
    if n_required is not None:
        ok = ok and len(value) == n_required
    if not ok:
        count = f"exactly {n_required}" if n_required is not None else "one or more"
        cfg._fail("f_lst", value, f"use a list of {count} significance factors > 0")
    cfg.f_lst = [float(f) for f in value]


@CONVERTERS.register("dual_pair")
@dataclass
class DualPairConverter(NPairConverter):
    """Two differential pairs per weight (4 devices): :class:`NPairConverter` with two factors.

    Default F = [1, 3] (low-significance pair first; F = 3 for the more significant pair as in
    Ambrogio et al. 2018, Nature 558:60). Equations as in :class:`NPairConverter`.
    """

    kind: ClassVar[str] = "dual_pair"

    def n_pairs_required(self) -> int | None:
        return 2


@CONVERTERS.register("single_device")
@dataclass
class SingleDeviceConverter(ConductanceConverter):
    """One device per weight: a linear map of the weight range onto [g_min, g_max].

    symmetric=True:  w_lo = −max|W|, w_hi = max|W|  (weight 0 sits mid-range; needs a reference
    current of (g_min + g_max)/2 in hardware).  symmetric=False: w_lo = min W, w_hi = max W
    (full range used for one-sided weights; incumbent ``SingleDeviceConductanceConverter``).
    s = (g_max − g_min)/(w_hi − w_lo);  g = g_min + s·(w − w_lo);  w = w_lo + (g − g_min)/s.
    """

    kind: ClassVar[str] = "single_device"

    symmetric: bool = True

    def validate(self) -> None:
        super().validate()
        self.check_bool("symmetric")

    @property
    def n_conductances(self) -> int:
        return 1

    def to_conductances(self, w: Tensor) -> tuple[list[Tensor], dict[str, Tensor]]:
        eps = _floor(w)
        if self.symmetric:
            m = self._abs_max(w)
            w_lo, width = -m, 2 * m
        else:
            w_lo = _reduce(w, self.granularity, "amin")
            width = (_reduce(w, self.granularity, "amax") - w_lo).clamp(min=eps)
        scale = (self.g_max - self.g_min) / width
        g = (self.g_min + scale * (w - w_lo)).clamp(self.g_min, self.g_max)
        return [g], {"scale": scale, "w_offset": w_lo}

    def from_conductances(self, gs: list[Tensor], params: dict[str, Tensor]) -> Tensor:
        self._check_gs(gs, params, ("scale", "w_offset"))
        return params["w_offset"] + (gs[0] - self.g_min) / params["scale"]
