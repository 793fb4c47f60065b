"""The noise-model interface (program → drift → read) and the saveable programmed state.

A noise model is a config dataclass with a converter and per-conductance hooks::

    program(w, generator) -> ProgrammedState
        gs_target, params = converter.to_conductances(w)
        g_prog_i = programming_noise(g_target_i, generator)      # once, at programming time
        nu_i     = drift_exponents(g_target_i, generator)        # once, at programming time
    drifted_weights(state, t_inference, generator) -> Tensor
        g_i(t) = conductance_at(g_target_i, g_prog_i, nu_i, t, generator)
               = read_noise(drift(g_prog_i, nu_i, t), t, generator)     (default composition)
        w(t)   = converter.from_conductances([g_i(t)], params)

Times are in seconds after programming (``t_inference >= 0``); conductances in µS. Randomness
comes only from the ``generator`` argument; every tensor stays on the input's device.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import ClassVar, Sequence

import torch
from torch import Tensor

from analogkit.config.base import ConfigBase, Registry
from analogkit.inference.converters import ConductanceConverter, SinglePairConverter

NOISE_MODELS = Registry("noise model")

__all__ = [
    "NOISE_MODELS",
    "NoiseModel",
    "NoiselessModel",
    "ProgrammedState",
    "polyval",
    "interp1d",
    "randn",
    "read_time_factor",
    "check_generator",
]


# -- small pure helpers used by the models ---------------------------------------------------
def polyval(coeffs: Sequence[float], x: Tensor) -> Tensor:
    """c_0 + c_1 x + c_2 x² + … (ascending order), by Horner's rule."""
    out = torch.full_like(x, float(coeffs[-1]))
    for c in reversed(coeffs[:-1]):
        out = out * x + float(c)
    return out


def interp1d(x: Tensor, xp: Sequence[float], fp: Sequence[float]) -> Tensor:
    """Piece-wise linear interpolation of the curve (xp, fp) at ``x``; constant beyond the ends.

    ``xp`` must be strictly increasing. Vectorised (``torch.searchsorted``), on ``x``'s device.
    """
    if len(xp) == 1:
        return torch.full_like(x, float(fp[0]))
    xp_t = torch.tensor(xp, dtype=x.dtype, device=x.device)
    fp_t = torch.tensor(fp, dtype=x.dtype, device=x.device)
    xc = x.clamp(float(xp[0]), float(xp[-1])).contiguous()
    i = torch.searchsorted(xp_t, xc, right=True).clamp(1, len(xp) - 1)
    x0, x1 = xp_t[i - 1], xp_t[i]
    y0, y1 = fp_t[i - 1], fp_t[i]
    return y0 + (y1 - y0) * (xc - x0) / (x1 - x0)


def check_generator(generator: object, where: str) -> None:
    """Library code never draws from PyTorch's global RNG: require an explicit generator."""
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"{where}: generator {generator!r} is not allowed; pass a torch.Generator "
            "(the tile's own, or torch.Generator().manual_seed(seed))"
        )


def randn(like: Tensor, generator: torch.Generator) -> Tensor:
    """Standard normal samples shaped like ``like`` (same dtype and device) from ``generator``."""
    check_generator(generator, "randn")
    return torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)


def read_time_factor(t: float, t_read: float) -> float:
    """√ln((t + t_read)/(2 t_read)), the growth of accumulated 1/f noise over [t_read, t];
    0 for t <= t_read (the log would be negative). Source: Nandakumar et al. 2019 (ICECS),
    Joshi et al. 2020 (Nat. Commun. 11:2473, Methods)."""
    arg = (t + t_read) / (2.0 * t_read)
    return math.sqrt(math.log(arg)) if arg > 1.0 else 0.0


# -- validation helpers shared by the model configs ------------------------------------------
def check_float_list(
    cfg: ConfigBase,
    name: str,
    *,
    length: int | None = None,
    min_length: int = 1,
    lo: float | None = None,
    increasing: bool = False,
    what: str = "numbers",
) -> list[float]:
    """Require a list of finite numbers (exact ``length`` or at least ``min_length``; each >= lo;
    strictly increasing if asked); store it back as a list of floats and return it."""
    value = getattr(cfg, name)
    count = f"exactly {length}" if length is not None else (f"{min_length} or more" if min_length > 1 else "one or more")
    bounds = f" >= {lo}" if lo is not None else ""
    order = ", strictly increasing" if increasing else ""
    allowed = f"use a list of {count} finite {what}{bounds}{order}"
    ok = isinstance(value, (list, tuple))
    if ok:
        ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    if ok:
        ok = len(value) == length if length is not None else len(value) >= min_length
    if ok and lo is not None:
        ok = all(v >= lo for v in value)
    if ok and increasing:
        ok = all(b > a for a, b in zip(value[:-1], value[1:]))
    if not ok:
        cfg._fail(name, value, allowed)
    out = [float(v) for v in value]
    setattr(cfg, name, out)
    return out


# -- programmed state ----------------------------------------------------------------------
_KEY = re.compile(r"^(g_target|g_prog|nu)\.(\d+)$")


class ProgrammedState:
    """What programming left on the chip: target and programmed conductances (µS), one drift
    exponent per device, and the converter's parameters. Plain tensors only, so that
    ``state_dict()`` saves with ``torch.save`` and loads with ``torch.load(weights_only=True)``.

    Keys of ``state_dict()``: ``g_target.<i>``, ``g_prog.<i>``, ``nu.<i>`` (i = conductance
    slice) and ``params.<name>``.
    """

    def __init__(
        self,
        g_target: list[Tensor],
        g_prog: list[Tensor],
        nu: list[Tensor],
        params: dict[str, Tensor],
    ) -> None:
        if not (len(g_target) == len(g_prog) == len(nu)) or not g_target:
            raise ValueError(
                f"ProgrammedState: g_target, g_prog and nu need the same, non-zero number of slices; "
                f"got {len(g_target)}, {len(g_prog)}, {len(nu)}"
            )
        self.g_target = list(g_target)
        self.g_prog = list(g_prog)
        self.nu = list(nu)
        self.params = dict(params)

    def __repr__(self) -> str:
        shape = tuple(self.g_prog[0].shape)
        return f"ProgrammedState(n_slices={self.n_slices}, shape={shape}, params={sorted(self.params)})"

    @property
    def n_slices(self) -> int:
        return len(self.g_prog)

    def state_dict(self) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for name in ("g_target", "g_prog", "nu"):
            for i, t in enumerate(getattr(self, name)):
                out[f"{name}.{i}"] = t
        for k, v in self.params.items():
            out[f"params.{k}"] = v if isinstance(v, Tensor) else torch.as_tensor(v)
        return out

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor]) -> "ProgrammedState":
        lists: dict[str, dict[int, Tensor]] = {"g_target": {}, "g_prog": {}, "nu": {}}
        params: dict[str, Tensor] = {}
        for key, value in state.items():
            if not isinstance(value, Tensor):
                raise ValueError(f"ProgrammedState: entry {key!r} is a {type(value).__name__}; expected a tensor")
            m = _KEY.match(key)
            if m:
                lists[m.group(1)][int(m.group(2))] = value
            elif key.startswith("params.") and len(key) > len("params."):
                params[key[len("params."):]] = value
            else:
                raise ValueError(
                    f"ProgrammedState: unknown key {key!r}; use g_target.<i>, g_prog.<i>, nu.<i> or params.<name>"
                )
        ordered = {}
        for name, d in lists.items():
            if sorted(d) != list(range(len(d))):
                raise ValueError(f"ProgrammedState: {name} slices {sorted(d)} are not numbered 0..n-1")
            ordered[name] = [d[i] for i in range(len(d))]
        return cls(ordered["g_target"], ordered["g_prog"], ordered["nu"], params)

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Replace the contents with those of ``state`` (as returned by :meth:`state_dict`)."""
        other = ProgrammedState.from_state_dict(state)
        self.g_target, self.g_prog, self.nu, self.params = other.g_target, other.g_prog, other.nu, other.params

    def to(self, *args, **kwargs) -> "ProgrammedState":  # type: ignore[no-untyped-def]
        """Move/cast every tensor (arguments as for ``Tensor.to``); returns a new state."""
        return ProgrammedState(
            [t.to(*args, **kwargs) for t in self.g_target],
            [t.to(*args, **kwargs) for t in self.g_prog],
            [t.to(*args, **kwargs) for t in self.nu],
            {k: v.to(*args, **kwargs) for k, v in self.params.items()},
        )


# -- the interface ------------------------------------------------------------------------
@dataclass
class NoiseModel(ConfigBase):
    """Base class of inference noise models: program once, then read at any time after.

    Subclasses override some of the per-conductance hooks (defaults: no noise, no drift):

    - ``programming_noise(g_target, generator) -> g_prog``
    - ``drift_exponents(g_target, generator) -> nu`` (one per device, sampled at programming)
    - ``drift(g_prog, nu, t_inference) -> g`` (deterministic)
    - ``read_noise(g, t_inference, generator) -> g``
    - ``conductance_at(g_target, g_prog, nu, t_inference, generator)`` composes the last two;
      override it for models whose time evolution is not "drift, then read noise".
    - ``check_time(t_inference)`` / ``allowed_times`` for models that cover only some times.

    To add a model: subclass as a ``@dataclass``, set ``kind``, add fields and check them in
    ``validate()`` (call ``super().validate()``), override hooks, then
    ``NOISE_MODELS.add(kind, cls)`` (runnable example: ``analogkit.inference`` docstring).
    Hooks must draw randomness only from ``generator`` (see :func:`randn`) and keep the input's
    device and dtype; the generator must live on the same device as the weights.

    ``g_max`` is the converter's (the conductance the largest weight maps to).
    """

    converter: ConductanceConverter = field(default_factory=SinglePairConverter)

    def validate(self) -> None:
        self.check_type("converter", ConductanceConverter, "use a ConductanceConverter (for example SinglePairConverter())")

    @property
    def g_max(self) -> float:
        return self.converter.g_max

    @property
    def g_min(self) -> float:
        return self.converter.g_min

    # -- per-conductance hooks ------------------------------------------------------------
    def programming_noise(self, g: Tensor, generator: torch.Generator) -> Tensor:
        return g.clone()

    def drift_exponents(self, g: Tensor, generator: torch.Generator) -> Tensor:
        return torch.zeros_like(g)

    def drift(self, g: Tensor, nu: Tensor, t_inference: float) -> Tensor:
        return g

    def read_noise(self, g: Tensor, t_inference: float, generator: torch.Generator) -> Tensor:
        return g

    def conductance_at(
        self,
        g_target: Tensor,
        g_prog: Tensor,
        nu: Tensor,
        t_inference: float,
        generator: torch.Generator,
    ) -> Tensor:
        return self.read_noise(self.drift(g_prog, nu, t_inference), t_inference, generator)

    @property
    def allowed_times(self) -> list[float] | None:
        """The inference times (s) the model covers, or ``None`` for any time >= 0."""
        return None

    def check_time(self, t_inference: float) -> float:
        """Return ``t_inference`` as float; raise ``ValueError`` unless it is finite and >= 0."""
        ok = isinstance(t_inference, (int, float)) and not isinstance(t_inference, bool)
        if ok:
            ok = math.isfinite(t_inference) and t_inference >= 0
        if not ok:
            raise ValueError(
                f"{type(self).__name__}: t_inference {t_inference!r} is not allowed; "
                "use a finite time in seconds after programming, >= 0"
            )
        return float(t_inference)

    # -- whole-weight operations ----------------------------------------------------------
    def program(self, w: Tensor, generator: torch.Generator) -> ProgrammedState:
        """Convert ``w`` to conductances, apply programming noise and draw drift exponents."""
        check_generator(generator, f"{type(self).__name__}.program")
        with torch.no_grad():
            g_target, params = self.converter.to_conductances(w.detach())
            g_prog = [self.programming_noise(g, generator) for g in g_target]
            nu = [self.drift_exponents(g, generator) for g in g_target]
        return ProgrammedState(g_target, g_prog, nu, params)

    def drifted_conductances(
        self, state: ProgrammedState, t_inference: float, generator: torch.Generator
    ) -> list[Tensor]:
        """Conductances (µS) at ``t_inference`` seconds after programming, one tensor per slice."""
        t = self.check_time(t_inference)
        check_generator(generator, f"{type(self).__name__}.drifted_conductances")
        if state.n_slices != self.converter.n_conductances:
            raise ValueError(
                f"{type(self).__name__}: the state has {state.n_slices} conductance slices but the "
                f"converter uses {self.converter.n_conductances}; program with this model"
            )
        with torch.no_grad():
            return [
                self.conductance_at(gt, gp, nu, t, generator)
                for gt, gp, nu in zip(state.g_target, state.g_prog, state.nu)
            ]

    def drifted_weights(
        self, state: ProgrammedState, t_inference: float, generator: torch.Generator
    ) -> Tensor:
        """Weights read back at ``t_inference``: drift and read noise applied, then converted back."""
        return self.converter.from_conductances(self.drifted_conductances(state, t_inference, generator), state.params)

    def programmed_weights(self, state: ProgrammedState) -> Tensor:
        """Weights right after programming (programming noise only; no drift, no read noise)."""
        return self.converter.from_conductances(state.g_prog, state.params)

    def sample_weights(self, w: Tensor, t_inference: float, generator: torch.Generator) -> Tensor:
        """Program ``w`` and read it at ``t_inference`` in one go (a fresh chip per call)."""
        self.check_time(t_inference)
        return self.drifted_weights(self.program(w, generator), t_inference, generator)


@NOISE_MODELS.register("noiseless")
@dataclass
class NoiselessModel(NoiseModel):
    """No noise and no drift: conductances are exactly the converter's targets at all times.

    g_prog = g_T;  g(t) = g_prog. Useful as a control and to test the conversion path.
    """

    kind: ClassVar[str] = "noiseless"
