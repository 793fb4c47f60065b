"""Pulsed resistive devices: the per-element state, the device interface and the shared pulsed model.

A device *config* (a dataclass) describes one kind of resistive element. ``build_state`` draws the
device-to-device (d2d) parameters of a whole array once, from a ``torch.Generator``, into a
:class:`DeviceState` of plain tensors. The physics are methods that change that state in place:

* ``pulse(state, direction, generator)``: one pulse slot; every element with a non-zero direction
  gets one "update-once" step (with cycle-to-cycle noise) and is clipped to its own bounds;
* ``pulse_n(state, counts, generator)``: ``|counts|`` pulses in the direction ``sign(counts)``, as if
  applied one after the other (closed form where that is exact, otherwise an exact loop over the
  pulse index with whole-array tensor operations);
* ``decay``, ``diffuse``, ``reset_devices``, ``set_weights``, ``apparent_weight`` (write noise).

Shared d2d model (Gokmen & Vlasov 2016, Front. Neurosci. 10:333; parameter names and defaults as
in IBM AIHWKit's ``PulsedDevice``, Rasch et al. 2021, arXiv:2104.02184), ξ ~ N(0, 1) per element::

    g_ij   = 1 + dw_min_dtod·ξ   (or exp(dw_min_dtod·ξ) if dw_min_dtod_log_normal)
    r_ij   = up_down_dtod·ξ
    Δw⁺_ij = dw_min·(g_ij + min(up_down, 0) + r_ij)
    Δw⁻_ij = dw_min·(g_ij − max(up_down, 0) − r_ij)         (|·| if enforce_consistency)
    b^max_ij = w_max·(1 + w_max_dtod·ξ),  b^min_ij = w_min·(1 + w_min_dtod·ξ)
    corrupt (probability corrupt_devices_prob): b^max = b^min = U(range ∩ ±corrupt_devices_range), Δw = 0
    decay:      w ← b_ij + (w − b_ij)·(1 − 1/τ_ij)^n,   τ_ij = lifetime·(1 + lifetime_dtod·ξ), b_ij = reset + reset_dtod·ξ
    diffusion:  w ← w + |diffusion·(1 + diffusion_dtod·ξ)|·ξ
    reset:      w ← b_ij + reset_std·ξ
    write noise (devices with write_noise_std): the array is read as w + write_noise_std·dw_min·ξ, with ξ
                drawn anew whenever the element is touched (pulsed, reset, set, decayed, diffused)

Sign convention: a positive direction or count increases ``w``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterator, Mapping

import torch
from torch import Tensor

from analogkit.config.base import ConfigBase, Registry

__all__ = [
    "DEVICES",
    "PULSE_N_METHODS",
    "Device",
    "DeviceState",
    "PulsedDevice",
    "AffineStepDevice",
    "register_device",
]

#: Every device config class, by its ``kind``.
DEVICES = Registry("device")

#: ``method`` values accepted by :meth:`Device.pulse_n`.
PULSE_N_METHODS = ("auto", "loop", "closed_form")

#: Per-step probability of a noisy step reversing its direction, Φ(−1/σ), below which the
#: constant-step closed form is used by ``method="auto"`` (see :class:`AffineStepDevice`).
REVERSAL_PROBABILITY_LIMIT = 1e-3

_CORE = ("w", "dw_up", "dw_down", "w_max", "w_min")


def register_device(cls: type["Device"]) -> type["Device"]:
    """Class decorator: register a device config class in :data:`DEVICES` under its ``kind``."""
    if not cls.__dict__.get("kind"):
        raise ValueError(f"{cls.__name__}: set a class attribute kind = '...' before registering")
    DEVICES.add(cls.kind, cls)
    return cls


# ---------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------
@dataclass(eq=False)
class DeviceState:
    """The tensors of an array of devices: hidden weight and the per-element (d2d) parameters.

    Every tensor has the array's shape. ``w`` is the hidden weight as the array is read (for
    reference devices: conductance minus reference), ``dw_up``/``dw_down`` the per-element step
    magnitudes, ``w_max``/``w_min`` the per-element bounds of ``w``. Device-specific tensors live in
    ``extra`` and are also reachable as attributes (``state.reset_bias``, ``state.reference``, …).
    ``state_dict()``/``load_state_dict()`` make it saveable like an ``nn.Module``'s buffers.
    """

    w: Tensor
    dw_up: Tensor
    dw_down: Tensor
    w_max: Tensor
    w_min: Tensor
    extra: dict[str, Tensor] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Tensor:
        # Only called when normal lookup fails: look into ``extra``.
        try:
            extra = object.__getattribute__(self, "extra")
        except AttributeError:
            raise AttributeError(name) from None
        if name in extra:
            return extra[name]
        raise AttributeError(f"DeviceState has no tensor {name!r}; it holds {', '.join(self.names())}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _CORE or name == "extra":
            object.__setattr__(self, name, value)
            return
        extra = self.__dict__.get("extra")
        if extra is not None and name in extra:
            extra[name] = value
            return
        raise AttributeError(f"DeviceState has no tensor {name!r}; add new tensors with state.extra[{name!r}] = ...")

    # -- inspection ---------------------------------------------------------------------------
    def names(self) -> list[str]:
        return list(_CORE) + list(self.extra)

    def tensors(self) -> dict[str, Tensor]:
        out = {name: getattr(self, name) for name in _CORE}
        out.update(self.extra)
        return out

    def __iter__(self) -> Iterator[tuple[str, Tensor]]:
        return iter(self.tensors().items())

    @property
    def shape(self) -> torch.Size:
        return self.w.shape

    @property
    def device(self) -> torch.device:
        return self.w.device

    @property
    def dtype(self) -> torch.dtype:
        return self.w.dtype

    def __repr__(self) -> str:
        return f"DeviceState(shape={tuple(self.shape)}, dtype={self.dtype}, device={self.device}, tensors={self.names()})"

    # -- saving -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Tensor]:
        """All tensors by name (detached, not copied), for ``torch.save`` or a module's buffers."""
        return {k: v.detach() for k, v in self.tensors().items()}

    def load_state_dict(self, state_dict: Mapping[str, Tensor]) -> None:
        """Copy tensors in place; the names and shapes must match exactly."""
        mine, theirs = set(self.names()), set(state_dict)
        if mine != theirs:
            missing, unexpected = sorted(mine - theirs), sorted(theirs - mine)
            raise ValueError(f"DeviceState.load_state_dict: missing {missing}, unexpected {unexpected}")
        for name, t in self.tensors().items():
            src = state_dict[name]
            if tuple(src.shape) != tuple(t.shape):
                raise ValueError(
                    f"DeviceState.load_state_dict: {name} has shape {tuple(src.shape)}, expected {tuple(t.shape)}"
                )
            t.copy_(src)

    @classmethod
    def from_state_dict(cls, state_dict: Mapping[str, Tensor]) -> "DeviceState":
        """A new state holding copies of the given tensors."""
        missing = [k for k in _CORE if k not in state_dict]
        if missing:
            raise ValueError(f"DeviceState.from_state_dict: missing {missing}")
        core = {k: state_dict[k].clone() for k in _CORE}
        extra = {k: v.clone() for k, v in state_dict.items() if k not in _CORE}
        return cls(**core, extra=extra)

    # -- copies and views ---------------------------------------------------------------------
    def _map(self, fn: Callable[[Tensor], Tensor]) -> "DeviceState":
        return DeviceState(
            **{k: fn(getattr(self, k)) for k in _CORE}, extra={k: fn(v) for k, v in self.extra.items()}
        )

    def clone(self) -> "DeviceState":
        return self._map(lambda t: t.clone())

    def to(self, *args: Any, **kwargs: Any) -> "DeviceState":
        return self._map(lambda t: t.to(*args, **kwargs))

    def gather(self, flat_index: Tensor, extras: tuple[str, ...] | None = None) -> "DeviceState":
        """1-D copy of the elements at ``flat_index`` (indices into the flattened array).

        ``extras`` limits the device-specific tensors copied (all if None); the core ones always are.
        """
        def take(t: Tensor) -> Tensor:
            return t.reshape(-1).index_select(0, flat_index)

        names = self.extra if extras is None else extras
        return DeviceState(**{k: take(getattr(self, k)) for k in _CORE}, extra={k: take(self.extra[k]) for k in names})

    def narrow(self, n: int) -> "DeviceState":
        """View of the first ``n`` elements of a 1-D state (writes go through to this state)."""
        return self._map(lambda t: t[:n])


# ---------------------------------------------------------------------------------------------
# Small numerical helpers
# ---------------------------------------------------------------------------------------------
def _pick(up: bool | Tensor, fn: Callable[[bool], tuple[Tensor, ...]]) -> tuple[Tensor, ...]:
    """Evaluate ``fn(True)``/``fn(False)`` for a python bool, or both merged by a bool tensor."""
    if isinstance(up, bool):
        return fn(up)
    a, b = fn(True), fn(False)
    return tuple(torch.where(up, x, y) for x, y in zip(a, b))


def _int_power(c: Tensor, n: Tensor) -> Tensor:
    """c**n for integer-valued n >= 0 and any real c (sign handled explicitly)."""
    mag = c.abs().pow(n)
    odd = torch.remainder(n, 2) == 1
    return torch.where((c < 0) & odd, -mag, mag)


def _geom(s: Tensor, n: Tensor) -> Tensor:
    """Σ_{j=0}^{n−1} (1+s)^j, stable for s → 0 (expm1/log1p) and correct for 1+s <= 0."""
    zero = s == 0
    s_safe = torch.where(zero, torch.ones_like(s), s)
    pos = s > -1
    if bool(pos.all()):
        out = torch.expm1(n * torch.log1p(s)) / s_safe
    else:
        log_c = torch.log1p(torch.where(pos, s, torch.zeros_like(s)))
        smooth = torch.expm1(n * log_c) / s_safe
        rough = (1 - _int_power(1 + s, n)) / (-s_safe)
        out = torch.where(pos, smooth, rough)
    return torch.where(zero, n, out)


def _weighted_geom(c: Tensor, x: Tensor, q: Tensor, n: Tensor) -> Tensor:
    """Σ_{j=0}^{n−1} q^{n−1−j}·c^{2j} with q = c²(1+x) (x = σ²s²/c²), stable for x → 0."""
    n1 = (n - 1).clamp(min=0)
    c2 = c * c
    has_x = x > 0
    x_safe = torch.where(has_x, x, torch.ones_like(x))
    e = torch.where(has_x, torch.expm1(n * torch.log1p(x_safe)) / x_safe, n)
    general = c2.pow(n1) * e
    return torch.where(c2 > 0, general, q.pow(n1))


def _normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


# ---------------------------------------------------------------------------------------------
# The device interface
# ---------------------------------------------------------------------------------------------
@dataclass
class Device(ConfigBase):
    """Interface of every device model, with the slow physics every device shares.

    Subclasses implement :meth:`_mean_std_dir` (the expected change and cycle-to-cycle std of one
    pulse at a given weight) and :meth:`_build`; everything else (pulsing, clipping, write noise,
    decay, diffusion, reset) is shared. Units: weights are in the normalised units of the array.

    Parameters shared by all devices (spec §1.8 defaults): ``dw_min`` (mean step, the granularity
    an update engine plans with), ``lifetime``/``lifetime_dtod`` (decay, in calls of :meth:`decay`;
    0 = off), ``diffusion``/``diffusion_dtod``, ``reset``/``reset_dtod``/``reset_std``.
    """

    dw_min: float = 0.001
    lifetime: float = 0.0
    lifetime_dtod: float = 0.0
    diffusion: float = 0.0
    diffusion_dtod: float = 0.0
    reset: float = 0.0
    reset_dtod: float = 0.0
    reset_std: float = 0.01

    #: fields (besides those ending in ``_dtod``) that :meth:`nominal` sets to 0
    _D2D_EXTRA: ClassVar[tuple[str, ...]] = ()
    #: device-specific state tensors the update rule reads (copied for the ``pulse_n`` loop)
    _STEP_EXTRAS: ClassVar[tuple[str, ...]] = ()

    # -- validation ---------------------------------------------------------------------------
    def validate(self) -> None:
        self.check_range("dw_min", 0, lo_open=True, allowed="use a step size > 0")
        self.check_range("lifetime", 0, allowed="use 0 (no decay) or a lifetime > 1 (in decay steps)")
        if 0 < self.lifetime <= 1:
            self._fail("lifetime", self.lifetime, "use 0 (no decay) or a lifetime > 1 (in decay steps)")
        self.check_range("diffusion", 0, allowed="use a standard deviation >= 0")
        self.check_range("reset", allowed="use a finite number (weight the device resets to)")
        self.check_range("reset_std", 0, allowed="use a standard deviation >= 0")
        for name in ("lifetime_dtod", "diffusion_dtod", "reset_dtod"):
            self.check_range(name, 0, allowed="use a device-to-device spread >= 0")
        if hasattr(self, "write_noise_std"):
            self.check_range("write_noise_std", 0, allowed="use a standard deviation >= 0 (in units of dw_min)")

    def to_dict(self) -> dict[str, Any]:
        """Plain data; derived fields (``init=False``) are left out so ``from_dict`` round-trips."""
        data = super().to_dict()
        for f in dataclasses.fields(self):
            if not f.init:
                data.pop(f.name, None)
        return data

    def nominal(self) -> "Device":
        """A copy without device-to-device variation (every ``*_dtod`` and d2d field set to 0)."""
        changes = {
            f.name: 0.0
            for f in dataclasses.fields(self)
            if f.init and (f.name.endswith("_dtod") or f.name in self._D2D_EXTRA)
        }
        return self.replace(**changes)

    # -- hooks for subclasses -------------------------------------------------------------------
    @property
    def write_noise_scale(self) -> float:
        """Std of the write noise in weight units: write_noise_std·dw_min (0 if the device has none)."""
        return float(getattr(self, "write_noise_std", 0.0)) * self.dw_min

    def _mean_std_dir(self, state: DeviceState, w: Tensor, up: bool) -> tuple[Tensor, Tensor]:
        """Signed expected change and cycle-to-cycle std of ONE pulse (direction ``up``) at ``w``."""
        raise NotImplementedError

    def _build(self, shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype) -> DeviceState:
        raise NotImplementedError

    def _closed_form_exact(self, state: DeviceState) -> bool:
        """Whether :meth:`_pulse_n_closed` is exact (in distribution) for this state."""
        return False

    def _pulse_n_closed(self, state: DeviceState, counts: Tensor, generator: torch.Generator) -> None:
        raise ValueError(
            f"{type(self).__name__}: pulse_n(method='closed_form') is not available for this device "
            "(its step depends non-linearly on w); use method='loop' or 'auto'"
        )

    # -- building -------------------------------------------------------------------------------
    def build_state(
        self, shape: tuple[int, ...] | torch.Size | int, generator: torch.Generator, dtype: torch.dtype = torch.float32
    ) -> DeviceState:
        """Draw the per-element parameters of an array of ``shape`` once, on ``generator.device``.

        The hidden weight starts at each element's reset value ``b_ij`` (``reset`` ± ``reset_dtod``),
        clipped to its bounds; write noise (if any) is drawn for every element.
        """
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"{type(self).__name__}.build_state: generator must be a torch.Generator, got {generator!r}")
        if isinstance(shape, int):
            shape = (shape,)
        shape = tuple(int(s) for s in shape)
        if any(s < 0 for s in shape):
            raise ValueError(f"{type(self).__name__}.build_state: shape {shape} has a negative size")
        if not dtype.is_floating_point:
            raise ValueError(f"{type(self).__name__}.build_state: dtype {dtype} is not a floating-point type")
        state = self._build(shape, generator, dtype)
        state.w.copy_(torch.maximum(torch.minimum(state.reset_bias, state.w_max), state.w_min))
        if self.write_noise_scale > 0:
            state.extra["write_noise"] = self.write_noise_scale * _randn(shape, generator, dtype)
        return state

    def _slow_extras(self, shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype) -> dict[str, Tensor]:
        """reset_bias (always), decay_scale (lifetime > 0), diffusion_rate (diffusion > 0)."""
        extra = {"reset_bias": self.reset + self.reset_dtod * _randn(shape, generator, dtype)}
        if self.lifetime > 0:
            tau = self.lifetime * (1 + self.lifetime_dtod * _randn(shape, generator, dtype))
            extra["decay_scale"] = torch.where(tau > 1, 1 - 1 / tau.clamp(min=1), torch.zeros_like(tau))
        if self.diffusion > 0:
            extra["diffusion_rate"] = (self.diffusion * (1 + self.diffusion_dtod * _randn(shape, generator, dtype))).abs()
        return extra

    # -- reading --------------------------------------------------------------------------------
    def apparent_weight(self, state: DeviceState, generator: torch.Generator | None = None) -> Tensor:
        """The weight the array is read as: ``w`` plus the element's current write noise, if any.

        The write noise is persistent (drawn when the element was last touched), so repeated reads
        agree; ``generator`` is not used and kept for interface symmetry. Do not modify the result
        in place: without write noise it is ``state.w`` itself.
        """
        if "write_noise" in state.extra:
            return state.w + state.extra["write_noise"]
        return state.w

    def step_stats(self, state: DeviceState, direction: int) -> tuple[Tensor, Tensor]:
        """Expected change and cycle-to-cycle std of ONE pulse at the current ``w``, per element.

        Closed form, before clipping to the bounds; ``direction`` is +1 (up) or −1 (down).
        """
        if direction not in (1, -1):
            raise ValueError(f"{type(self).__name__}.step_stats: direction {direction!r} is not allowed; use +1 or -1")
        return self._mean_std_dir(state, state.w, direction > 0)

    def symmetry_point(self, state: DeviceState, n_iter: int = 60) -> Tensor:
        """Per element, the weight where the expected up and down steps cancel.

        Generic: bisection of mean_up(w) + mean_down(w) on [w_min, w_max] (assumed to decrease in w);
        if it does not change sign, the bound that random ±1 pulses drift to.
        """
        lo, hi = state.w_min.clone(), state.w_max.clone()

        def f(w: Tensor) -> Tensor:
            return self._mean_std_dir(state, w, True)[0] + self._mean_std_dir(state, w, False)[0]

        f_lo, f_hi = f(lo), f(hi)
        a, b = lo.clone(), hi.clone()
        for _ in range(n_iter):
            mid = 0.5 * (a + b)
            pos = f(mid) > 0
            a = torch.where(pos, mid, a)
            b = torch.where(pos, b, mid)
        sp = 0.5 * (a + b)
        sp = torch.where(f_lo <= 0, lo, sp)
        return torch.where(f_hi >= 0, hi, sp)

    # -- pulsing --------------------------------------------------------------------------------
    def pulse(self, state: DeviceState, direction: Tensor, generator: torch.Generator) -> None:
        """One pulse slot, in place: each element with ``direction != 0`` gets one update-once step.

        w ← clip(w + m(w) + s(w)·ξ, w_min, w_max), with m, s the device's mean and c2c std.
        """
        _check_shape(self, "direction", direction, state)
        active = direction != 0
        up = direction > 0
        mean, std = _pick(up, lambda u: self._mean_std_dir(state, state.w, u))
        xi = _randn(state.shape, generator, state.dtype)
        new = torch.minimum(torch.maximum(state.w + mean + std * xi, state.w_min), state.w_max)
        state.w.copy_(torch.where(active, new, state.w))
        self._refresh_write_noise(state, active, generator)

    def pulse_n(self, state: DeviceState, counts: Tensor, generator: torch.Generator, method: str = "auto") -> None:
        """Apply ``|counts|`` pulses in direction ``sign(counts)`` per element, as if one after another.

        ``method``: ``"loop"`` applies them exactly, looping over the pulse index k = 1..max|counts|
        on the elements that still have pulses left (sorted once, so step k touches a prefix; cost ∝
        Σ|counts|). ``"closed_form"`` uses the device's n-pulse formula where it has one (see the
        device's docstring for when it is exact). ``"auto"`` (default) uses the closed form only
        where it is exact and loops otherwise.
        """
        if method not in PULSE_N_METHODS:
            raise ValueError(
                f"{type(self).__name__}.pulse_n: method {method!r} is not allowed; use one of {', '.join(PULSE_N_METHODS)}"
            )
        _check_shape(self, "counts", counts, state)
        if counts.dtype.is_floating_point or counts.dtype == torch.bool:
            raise ValueError(f"{type(self).__name__}.pulse_n: counts must be an integer tensor, got {counts.dtype}")
        if method == "auto":
            method = self.pulse_n_method(state)
        if method == "closed_form":
            self._pulse_n_closed(state, counts, generator)
        else:
            self._pulse_n_loop(state, counts, generator)

    def pulse_n_method(self, state: DeviceState) -> str:
        """What ``pulse_n(method="auto")`` does for this state: ``"closed_form"`` or ``"loop"``."""
        return "closed_form" if self._closed_form_exact(state) else "loop"

    def _pulse_n_loop(self, state: DeviceState, counts: Tensor, generator: torch.Generator) -> None:
        # Per direction: take the elements with pulses in that direction, sorted by |count|
        # (descending, stable), so that step k acts on a prefix of them; cost ∝ Σ|counts|.
        flat = counts.reshape(-1)
        # work on a flat view; a non-contiguous state (e.g. one group of a tile) gets a flat copy
        # that is written back at the end
        w_flat = state.w.view(-1) if state.w.is_contiguous() else state.w.reshape(-1).clone()
        for up in (True, False):
            idx = torch.nonzero(flat > 0 if up else flat < 0).squeeze(1)
            if idx.numel() == 0:
                continue
            n = flat.index_select(0, idx).to(torch.int64).abs()
            order = torch.argsort(-n, stable=True)  # ascending sort of −n: much faster than descending
            idx, n = idx.index_select(0, order), n.index_select(0, order)
            active = torch.bincount(n).flip(0).cumsum(0).flip(0).tolist()  # active[k] = #{n >= k}
            sub = state.gather(idx, self._STEP_EXTRAS)
            for k in range(1, len(active)):
                self._step_inplace(sub.narrow(active[k]), up, generator)
            w_flat.index_copy_(0, idx, sub.w)
        if not state.w.is_contiguous():
            state.w.copy_(w_flat.view(state.w.shape))
        self._refresh_write_noise(state, counts != 0, generator)

    def _step_inplace(self, state: DeviceState, up: bool, generator: torch.Generator) -> None:
        """One pulse in direction ``up`` for every element of ``state``, in place."""
        mean, std = self._mean_std_dir(state, state.w, up)
        xi = _randn(state.shape, generator, state.dtype)
        state.w.add_(mean).addcmul_(std, xi).clamp_(min=state.w_min, max=state.w_max)

    # -- slow physics ---------------------------------------------------------------------------
    def set_weights(self, state: DeviceState, w: Tensor, generator: torch.Generator | None = None) -> None:
        """Program the hidden weights (clipped to each element's bounds); redraws write noise."""
        _check_shape(self, "w", w, state)
        state.w.copy_(torch.minimum(torch.maximum(w.to(state.dtype), state.w_min), state.w_max))
        self._refresh_write_noise(state, None, generator)

    def decay(self, state: DeviceState, generator: torch.Generator | None = None, n: int = 1) -> None:
        """Relax towards the reset value: w ← b_ij + (w − b_ij)·(1 − 1/τ_ij)^n (no-op if lifetime = 0).

        Source: AIHWKit ``PulsedDevice.lifetime`` (Rasch et al. 2021); ``n`` decay steps at once.
        """
        if self.lifetime <= 0 or n == 0:
            return
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"{type(self).__name__}.decay: n {n!r} is not allowed; use an integer >= 0")
        b = state.reset_bias
        new = b + (state.w - b) * state.decay_scale.pow(n)
        state.w.copy_(torch.minimum(torch.maximum(new, state.w_min), state.w_max))
        self._refresh_write_noise(state, None, generator)

    def diffuse(self, state: DeviceState, generator: torch.Generator) -> None:
        """Random walk of the hidden weight: w ← w + ρ_ij·ξ, ρ_ij = |diffusion(1 + diffusion_dtod ξ)| (no-op if 0)."""
        if self.diffusion <= 0:
            return
        new = state.w + state.diffusion_rate * _randn(state.shape, generator, state.dtype)
        state.w.copy_(torch.minimum(torch.maximum(new, state.w_min), state.w_max))
        self._refresh_write_noise(state, None, generator)

    def reset_devices(
        self, state: DeviceState, mask: Tensor | None = None, generator: torch.Generator | None = None
    ) -> None:
        """Reset the elements in ``mask`` (all if None): w ← clip(b_ij + reset_std·ξ).

        With a mask, only the masked elements draw (a refresh resets a few percent of an array)."""
        if self.reset_std > 0 and generator is None:
            raise ValueError(f"{type(self).__name__}.reset_devices: reset_std > 0 needs a generator")
        if mask is None:
            new = state.reset_bias
            if self.reset_std > 0:
                new = new + self.reset_std * _randn(state.shape, generator, state.dtype)
            state.w.copy_(torch.minimum(torch.maximum(new, state.w_min), state.w_max))
            self._refresh_write_noise(state, None, generator)
            return
        _check_shape(self, "mask", mask, state)
        at = mask.to(torch.bool).nonzero(as_tuple=True)
        new = _at(state.reset_bias, at, state)
        if self.reset_std > 0:
            new = new + self.reset_std * _randn(new.shape, generator, state.dtype)
        state.w[at] = torch.minimum(torch.maximum(new, _at(state.w_min, at, state)), _at(state.w_max, at, state))
        self._refresh_write_noise(state, mask, generator)

    def _refresh_write_noise(self, state: DeviceState, mask: Tensor | None, generator: torch.Generator | None) -> None:
        """Redraw the write noise of the elements in ``mask`` (all if None); only those draw."""
        if "write_noise" not in state.extra:
            return
        if generator is None:
            raise ValueError(f"{type(self).__name__}: a device with write noise needs a generator here")
        noise = state.extra["write_noise"]
        if mask is None:
            noise.copy_(self.write_noise_scale * _randn(state.shape, generator, state.dtype))
            return
        at = mask.to(torch.bool).expand(state.shape).nonzero(as_tuple=True)
        noise[at] = _at(self.write_noise_scale, at, state) * _randn((at[0].numel(),), generator, state.dtype)


def _at(value: Tensor | float, at: tuple[Tensor, ...], state: DeviceState) -> Tensor | float:
    """``value`` (a scalar, or a tensor broadcastable to the state's shape) at the elements ``at``."""
    if not isinstance(value, Tensor):
        return value
    return value.expand(state.shape)[at]


def _randn(shape: tuple[int, ...] | torch.Size, generator: torch.Generator, dtype: torch.dtype) -> Tensor:
    return torch.randn(tuple(shape), generator=generator, device=generator.device, dtype=dtype)


def _rand(shape: tuple[int, ...] | torch.Size, generator: torch.Generator, dtype: torch.dtype) -> Tensor:
    return torch.rand(tuple(shape), generator=generator, device=generator.device, dtype=dtype)


def _check_shape(device: Device, name: str, t: Tensor, state: DeviceState) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{type(device).__name__}: {name} must be a tensor, got {type(t).__name__}")
    if tuple(t.shape) != tuple(state.shape):
        raise ValueError(f"{type(device).__name__}: {name} has shape {tuple(t.shape)}, the state has {tuple(state.shape)}")


# ---------------------------------------------------------------------------------------------
# Pulsed devices
# ---------------------------------------------------------------------------------------------
@dataclass
class PulsedDevice(Device):
    """Base of the pulsed resistive device models: steps, bounds and their d2d variation.

    Defaults are the incumbent's (spec §1.8): ``dw_min`` 0.001 with 30 % d2d (``dw_min_dtod``)
    and 30 % cycle-to-cycle (``dw_min_std``, relative); ``up_down`` bias 0 with 1 % d2d; bounds
    ±0.6 with 30 % d2d; ``enforce_consistency`` (non-negative steps, bounds around 0).
    The range [w_min, w_max] must contain 0 (devices are read relative to a zero point).
    """

    dw_min_dtod: float = 0.3
    dw_min_dtod_log_normal: bool = False
    dw_min_std: float = 0.3
    up_down: float = 0.0
    up_down_dtod: float = 0.01
    w_max: float = 0.6
    w_min: float = -0.6
    w_max_dtod: float = 0.3
    w_min_dtod: float = 0.3
    enforce_consistency: bool = True
    corrupt_devices_prob: float = 0.0
    corrupt_devices_range: float = 0.1

    _D2D_EXTRA: ClassVar[tuple[str, ...]] = ("corrupt_devices_prob",)

    def validate(self) -> None:
        super().validate()
        self.check_bool("dw_min_dtod_log_normal")
        self.check_bool("enforce_consistency")
        for name in ("dw_min_dtod", "up_down_dtod", "w_max_dtod", "w_min_dtod"):
            self.check_range(name, 0, allowed="use a device-to-device spread >= 0 (relative)")
        self.check_range("dw_min_std", 0, allowed="use a cycle-to-cycle std >= 0 (relative to the step)")
        self.check_range(
            "up_down", -1, 1, lo_open=True, hi_open=True,
            allowed="use a number in (-1, 1): the relative bias of up over down steps",
        )
        self.check_range("w_max", 0, allowed="use a number >= 0 (the range [w_min, w_max] must contain 0)")
        self.check_range("w_min", hi=0, allowed="use a number <= 0 (the range [w_min, w_max] must contain 0)")
        if not self.w_min < self.w_max:
            self._fail("w_min", self.w_min, f"use a number below w_max = {self.w_max}")
        self.check_range("corrupt_devices_prob", 0, 1, allowed="use a probability in [0, 1]")
        self.check_range("corrupt_devices_range", 0, allowed="use a number >= 0 (corrupt devices stick in ±range)")

    # Subclasses add their tensors and may change the bounds (device space) in _populate.
    def _populate(self, state: DeviceState, generator: torch.Generator) -> None:
        pass

    def _build(self, shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype) -> DeviceState:
        def randn() -> Tensor:
            return _randn(shape, generator, dtype)

        xi = randn()
        gain = torch.exp(self.dw_min_dtod * xi) if self.dw_min_dtod_log_normal else 1 + self.dw_min_dtod * xi
        r = self.up_down_dtod * randn()
        up_bias, down_bias = min(self.up_down, 0.0), -max(self.up_down, 0.0)
        dw_up = self.dw_min * (up_bias + gain + r)
        dw_down = self.dw_min * (down_bias + gain - r)
        b_max = self.w_max * (1 + self.w_max_dtod * randn())
        b_min = self.w_min * (1 + self.w_min_dtod * randn())
        crossed = b_min > b_max
        if self.enforce_consistency:
            dw_up, dw_down = dw_up.abs(), dw_down.abs()
            b_max, b_min = torch.where(crossed, b_min, b_max).abs(), -torch.where(crossed, b_max, b_min).abs()
        else:  # a device whose bounds crossed is stuck at their midpoint
            mid = 0.5 * (b_max + b_min)
            b_max, b_min = torch.where(crossed, mid, b_max), torch.where(crossed, mid, b_min)
        if self.corrupt_devices_prob > 0:
            corrupt = _rand(shape, generator, dtype) < self.corrupt_devices_prob
            rng = abs(self.corrupt_devices_range)
            lo = torch.minimum(b_max, b_min).clamp(min=-rng)
            hi = torch.maximum(b_max, b_min).clamp(max=rng)
            value = lo + (hi - lo) * _rand(shape, generator, dtype)
            b_max, b_min = torch.where(corrupt, value, b_max), torch.where(corrupt, value, b_min)
            zero = torch.zeros_like(dw_up)
            dw_up, dw_down = torch.where(corrupt, zero, dw_up), torch.where(corrupt, zero, dw_down)
        state = DeviceState(
            w=torch.zeros(shape, dtype=dtype, device=generator.device),
            dw_up=dw_up.contiguous(), dw_down=dw_down.contiguous(),
            w_max=b_max.contiguous(), w_min=b_min.contiguous(),
            extra=self._slow_extras(shape, generator, dtype),
        )
        self._populate(state, generator)
        return state


# ---------------------------------------------------------------------------------------------
# Devices whose step is affine in w: constant step, linear step, soft bounds (+ variants)
# ---------------------------------------------------------------------------------------------
@dataclass
class AffineStepDevice(PulsedDevice):
    """Base of devices whose expected step is affine in the weight: mean Δw = δ + s·w.

    With c = 1 + s, n pulses in one direction starting at w₀ (before clipping, Gaussian c2c noise):

        mean   w_n = w₀ + d₀·Σ_{j<n} c^j,                d₀ = δ + s·w₀ (mean first step)
        var    additive noise (std σ·A):        σ²A²·Σ_{j<n} c^{2j}
               multiplicative noise (σ·|step|): σ²d₀²·Σ_{j<n} q^{n−1−j} c^{2j},  q = c² + σ²s²

    Exactness of this closed form (``pulse_n(method="closed_form")``, then clipped once):

    * σ = 0 and c >= 0 (every device without c2c noise whose steps do not overshoot their fixed
      point): the path is deterministic and monotone, so clipping once at the end is exact.
    * s = 0 (constant step): n steps Δw(1+σξ_k) sum to nΔw + σΔw√n·ξ exactly in distribution;
      clipping once at the end is exact when every step moves the same way. A noisy step reverses
      (1+σξ < 0) with probability Φ(−1/σ) (4·10⁻⁴ at σ = 0.3); only then, and only if the element
      also reaches a bound within the train, does the end-clip differ from step-wise clipping.
      ``method="auto"`` takes the closed form when Φ(−1/σ) < 10⁻³ (σ <= 0.32).
    * s ≠ 0 with noise: the mean and variance above are exact, the distribution is approximated by
      a Gaussian (exact for additive noise without clipping; for multiplicative noise the true law is
      a product of Gaussians) and clipping only at the end ignores paths that touch a bound. Offered
      only as the explicit option ``method="closed_form"``; ``"auto"`` loops exactly.
    """

    def _affine_dir(self, state: DeviceState, up: bool) -> tuple[Tensor, Tensor, Tensor]:
        """(δ, s, A): signed mean step δ + s·w and the additive-noise scale A, for one direction."""
        raise NotImplementedError

    def _mult_noise(self) -> bool:
        return True

    def _mean_std_dir(self, state: DeviceState, w: Tensor, up: bool) -> tuple[Tensor, Tensor]:
        delta, slope, add = self._affine_dir(state, up)
        mean = delta + slope * w
        std = self.dw_min_std * (mean.abs() if self._mult_noise() else add.abs())
        return mean, std

    def _closed_form_exact(self, state: DeviceState) -> bool:
        s_up = self._affine_dir(state, True)[1]
        s_down = self._affine_dir(state, False)[1]
        if self.dw_min_std == 0:
            return bool(((s_up >= -1) & (s_down >= -1)).all())
        if bool(((s_up == 0) & (s_down == 0)).all()):
            return _normal_cdf(-1.0 / self.dw_min_std) < REVERSAL_PROBABILITY_LIMIT
        return False

    def _pulse_n_closed(self, state: DeviceState, counts: Tensor, generator: torch.Generator) -> None:
        dtype = state.dtype
        active = counts != 0
        n = counts.abs().to(dtype)
        up = counts > 0
        delta, slope, add = _pick(up, lambda u: self._affine_dir(state, u))
        w0 = state.w
        d0 = delta + slope * w0
        mean = w0 + d0 * _geom(slope, n)
        sigma = self.dw_min_std
        if sigma > 0:
            if self._mult_noise():
                c = 1 + slope
                c2 = c * c
                q = c2 + (sigma * slope) ** 2
                x = torch.where(c2 > 0, (sigma * slope) ** 2 / torch.where(c2 > 0, c2, torch.ones_like(c2)), torch.zeros_like(c2))
                var = sigma**2 * d0 * d0 * _weighted_geom(c, x, q, n)
            else:
                var = sigma**2 * add * add * _geom(slope * (2 + slope), n)
            mean = mean + var.clamp(min=0).sqrt() * _randn(state.shape, generator, dtype)
        new = torch.minimum(torch.maximum(mean, state.w_min), state.w_max)
        state.w.copy_(torch.where(active, new, w0))
        self._refresh_write_noise(state, active, generator)

    def symmetry_point(self, state: DeviceState, n_iter: int = 60) -> Tensor:
        """w* where the expected up and down steps cancel: w* = −(δ⁺ + δ⁻)/(s⁺ + s⁻), clipped to the bounds.

        For soft bounds this is w* = (Δw⁺ − Δw⁻)/(Δw⁺/b^max − Δw⁻/b^min) (Gokmen & Haensch 2020;
        Wu et al. 2025, "symmetric point"). Without a slope (constant steps) the expected drift
        is constant: NaN where it is zero (every point balances), else the bound it drifts to.
        """
        d_up, s_up, _ = self._affine_dir(state, True)
        d_dn, s_dn, _ = self._affine_dir(state, False)
        s = s_up + s_dn
        d = d_up + d_dn
        has_slope = s != 0
        sp = -d / torch.where(has_slope, s, torch.ones_like(s))
        sp = torch.minimum(torch.maximum(sp, state.w_min), state.w_max)
        drift = torch.where(d > 0, state.w_max, torch.where(d < 0, state.w_min, torch.full_like(d, float("nan"))))
        return torch.where(has_slope, sp, drift)
