"""Compound devices: several arrays of devices (and digital buffers) behind one cross-point.

A compound is a config (a validated dataclass, like a device) that a tile uses wherever it would
use a pulsed device: it builds a state, says which weight the forward and backward passes read,
programs a target weight, and turns each recorded (x, d) pair into pulses on its arrays. The
arrays are ordinary pulsed devices (or other compounds); their pulses go through the update engine
(:func:`analogkit.update.pulsed_update_`), so every non-ideality of the devices applies.

State layout. :class:`CompoundState` holds the sub-arrays' states (one per entry of
:meth:`Compound.sub_devices`) and the compound's own tensors (digital buffers, choppers, counters),
every one with the tile's leading group dimension so that ``select_group(g)`` is a set of views.
``tensors()`` flattens everything into one dict (``d0__w``, ``d1__dw_up``, …, ``buffer``, …) that
the tile stores as buffers; :meth:`Compound.state_from_tensors` rebuilds the state from them.
The tensor ``w`` is the effective hidden weight (Σ γ_k w_k): what a pulsed layer exposes as
``layer.weight``. It is the slow array's own hidden weight where that is the whole weight (e.g.
Tiki-Taka with γ = 0, mixed precision), otherwise an own tensor refreshed after every change.

Helpers shared by the compounds: :func:`update_array_` (a pulsed update of one array, device or
compound), :func:`apply_counts_` (given integer pulse counts, applied exactly as
``pulse_n(method="auto")`` does, through the fused kernel where it covers the device) and
:func:`read_columns` (an analog read of selected columns or rows with one-hot inputs). Selected
vectors (columns or rows) are given as an index tensor or, where they are consecutive, as a
``slice`` (:func:`as_index`), which the helpers turn into views instead of copies (:func:`take`,
:func:`put_`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterator, Mapping, Sequence

import torch
from torch import Tensor

from analogkit.config.base import ConfigBase, Registry
from analogkit.config.io import IOConfig
from analogkit.devices.base import Device, DeviceState
from analogkit.periphery.mvm import TileGrid, analog_mvm
from analogkit.update import engine as _engine
from analogkit.update import kernels as _kernels
from analogkit.update import kernels_step as _kernels_step
from analogkit.update.config import UpdateConfig
from analogkit.update.reference import has_closed_form
from analogkit.update.trains import coincidence_counts, plan_trains

__all__ = [
    "COMPOUNDS",
    "Compound",
    "CompoundState",
    "Index",
    "apply_counts_",
    "as_index",
    "granularity_of",
    "index_count",
    "index_tensor",
    "put_",
    "read_columns",
    "register_compound",
    "take",
    "update_array_",
]

#: Every compound config class, by its ``kind``.
COMPOUNDS = Registry("compound")

#: Separator between a sub-array's prefix and its tensor names in the flat tensor dict.
SEP = "__"

_CORE = ("w", "dw_up", "dw_down", "w_max", "w_min")


def register_compound(cls: type["Compound"]) -> type["Compound"]:
    """Class decorator: register a compound config class in :data:`COMPOUNDS` under its ``kind``."""
    if not cls.__dict__.get("kind"):
        raise ValueError(f"{cls.__name__}: set a class attribute kind = '...' before registering")
    COMPOUNDS.add(cls.kind, cls)
    return cls


# ---------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------
def _select(state: Any, g: int) -> Any:
    if hasattr(state, "select_group"):
        return state.select_group(g)
    return state._map(lambda t: t[g])


@dataclass(eq=False)
class CompoundState:
    """The arrays' states of a compound (``devices``) and its own tensors (``extra``).

    ``w`` is the effective hidden weight: an own tensor kept up to date by the compound, or — when
    ``weight_index`` is set — the hidden weight of that array itself (for example the slow array of
    Tiki-Taka with γ = 0), which then appears in :meth:`tensors` as ``w`` rather than ``d{k}__w``.
    Own tensors are reachable as attributes (``state.buffer``, ``state.in_chopper``, …).
    """

    devices: list[Any]
    extra: dict[str, Tensor]
    weight_index: int | None = None

    def __getattr__(self, name: str) -> Tensor:
        try:
            extra = object.__getattribute__(self, "extra")
        except AttributeError:
            raise AttributeError(name) from None
        if name in extra:
            return extra[name]
        raise AttributeError(f"CompoundState has no tensor {name!r}; it holds {', '.join(self.names())}")

    @property
    def w(self) -> Tensor:
        if self.weight_index is not None:
            return self.devices[self.weight_index].w
        return self.extra["w"]

    def tensors(self) -> dict[str, Tensor]:
        """Every tensor by a flat name: ``d{k}__{name}`` for array k, own tensors by their name."""
        out: dict[str, Tensor] = {}
        if self.weight_index is not None:
            out["w"] = self.w
        for k, sub in enumerate(self.devices):
            for name, t in sub.tensors().items():
                if k == self.weight_index and name == "w":
                    continue
                out[f"d{k}{SEP}{name}"] = t
        out.update(self.extra)
        return out

    def names(self) -> list[str]:
        return list(self.tensors())

    def __iter__(self) -> Iterator[tuple[str, Tensor]]:
        return iter(self.tensors().items())

    @property
    def shape(self) -> torch.Size:
        return self.w.shape

    @property
    def dtype(self) -> torch.dtype:
        return self.w.dtype

    @property
    def device(self) -> torch.device:
        return self.w.device

    def select_group(self, g: int) -> "CompoundState":
        """Views of group ``g`` of every tensor (writes go through)."""
        return CompoundState(
            [_select(s, g) for s in self.devices], {k: v[g] for k, v in self.extra.items()}, self.weight_index
        )

    def _map(self, fn: Callable[[Tensor], Tensor]) -> "CompoundState":
        return CompoundState([s._map(fn) for s in self.devices], {k: fn(v) for k, v in self.extra.items()}, self.weight_index)

    def clone(self) -> "CompoundState":
        return self._map(lambda t: t.clone())

    def state_dict(self) -> dict[str, Tensor]:
        return {k: v.detach() for k, v in self.tensors().items()}

    def load_state_dict(self, state_dict: Mapping[str, Tensor]) -> None:
        mine = self.tensors()
        if set(mine) != set(state_dict):
            raise ValueError(
                f"CompoundState.load_state_dict: missing {sorted(set(mine) - set(state_dict))}, "
                f"unexpected {sorted(set(state_dict) - set(mine))}"
            )
        for name, t in mine.items():
            t.copy_(state_dict[name])

    def __repr__(self) -> str:
        return f"CompoundState(shape={tuple(self.shape)}, arrays={len(self.devices)}, own={list(self.extra)})"


# ---------------------------------------------------------------------------------------------
# Selected vectors: index tensors, or slices where they are consecutive
# ---------------------------------------------------------------------------------------------
#: Vectors (columns or rows) of an array: an int64 index tensor, or a ``slice`` (start, stop, step 1).
Index = Tensor | slice


def as_index(run: Sequence[int], device: torch.device | str) -> Index:
    """``run`` as ``slice(a, b)`` if it is a, a + 1, …, b − 1 (then reads and writes use views), else a tensor."""
    start = int(run[0]) if len(run) else 0
    if all(int(i) == start + k for k, i in enumerate(run)):
        return slice(start, start + len(run))
    return torch.tensor([int(i) for i in run], dtype=torch.int64, device=device)


def index_tensor(index: Index, device: torch.device | str) -> Tensor:
    """The indices of ``index`` as an int64 tensor."""
    if isinstance(index, slice):
        return torch.arange(index.start, index.stop, dtype=torch.int64, device=device)
    return index


def index_count(index: Index) -> int:
    """How many vectors ``index`` selects."""
    return index.stop - index.start if isinstance(index, slice) else int(index.numel())


def take(t: Tensor, index: Index, dim: int) -> Tensor:
    """Entries ``index`` of ``t`` along ``dim``: a view (writes go through) for a slice, a copy otherwise."""
    if isinstance(index, slice):
        return t.narrow(dim, index.start, index.stop - index.start)
    return t.index_select(dim, index)


def put_(t: Tensor, index: Index, dim: int, values: Tensor) -> None:
    """Write ``values`` as the entries ``index`` of ``t`` along ``dim`` (nothing to do if ``values``
    is that very view, as :func:`take` returns it for a slice)."""
    if isinstance(index, slice):
        view = t.narrow(dim, index.start, index.stop - index.start)
        if values.data_ptr() != view.data_ptr() or values.stride() != view.stride() or values.shape != view.shape:
            view.copy_(values)
    else:
        t.index_copy_(dim, index, values)


# ---------------------------------------------------------------------------------------------
# Helpers on arrays (plain devices or compounds)
# ---------------------------------------------------------------------------------------------
def is_array_device(obj: Any) -> bool:
    """Whether ``obj`` can be an array of a compound: a device config or a compound config."""
    return isinstance(obj, (Device, Compound))


def granularity_of(device: Any) -> float:
    """The weight change of one pulse (``dw_min`` of a device, ``pulse_granularity`` of a compound)."""
    if isinstance(device, Compound):
        return float(device.pulse_granularity)
    return float(device.dw_min)


def hidden_weight_of(device: Any, state: Any) -> Tensor:
    if isinstance(device, Compound):
        return device.hidden_weight(state)
    return state.w


def state_of(device: Any, tensors: Mapping[str, Tensor]) -> Any:
    """Rebuild an array's state from its named tensors (views, not copies)."""
    rebuild = getattr(device, "state_from_tensors", None)
    if rebuild is not None:
        return rebuild(tensors)
    return DeviceState(**{k: tensors[k] for k in _CORE}, extra={k: v for k, v in tensors.items() if k not in _CORE})


def update_array_(device: Any, state: Any, x: Tensor, d: Tensor, lr: float, cfg: UpdateConfig,
                  generator: torch.Generator) -> None:
    """ΔW = −lr·d xᵀ written to one array as pulses (the engine for a device, its own rule for a compound)."""
    if lr <= 0 or x.shape[0] == 0:
        return
    if isinstance(device, Compound):
        device.pulsed_update_(state, x, d, lr, cfg, generator)
    else:
        _engine.pulsed_update_(device, state, x, d, float(lr), cfg, generator)


def update_one_hot_(device: Any, state: Any, x: Tensor, d: Tensor, lr: float, cfg: UpdateConfig,
                    generator: torch.Generator, columns: bool = True) -> None:
    """ΔW = −lr·d xᵀ where every sample touches its own column (x one-hot, distinct columns) — or
    its own row (d one-hot, if not ``columns``): a transfer or refresh write.

    The samples share no element, so their order does not matter: where the update engine would run
    its PyTorch reference (one whole-array pulse application per sample), the coincidence counts of
    all samples are drawn at once — each sample's trains restricted to its one column (row), the
    others never fire — and applied in one go. Otherwise (fused kernel, floating-point update,
    compounds) this is :func:`update_array_`.
    """
    if lr <= 0 or x.shape[0] == 0:
        return
    if (isinstance(device, Compound) or cfg.pulse_type == "none"
            or _engine.select_backend(device, state, cfg) == "numba"):
        update_array_(device, state, x, d, lr, cfg, generator)
        return
    hot = x if columns else d
    index = hot.abs().argmax(dim=1)
    ar = torch.arange(hot.shape[0], device=hot.device)
    one = hot[ar, index].unsqueeze(1)  # the one non-zero entry of each sample
    xs, ds = (one, d) if columns else (x, one)
    plan = plan_trains(xs, ds, float(lr), cfg, float(device.dw_min))
    counts = coincidence_counts(xs, ds, plan, cfg, generator)  # (k, out, 1) or (k, 1, in)
    total = torch.zeros(state.w.shape, dtype=torch.int32, device=state.w.device)
    if columns:
        total.index_add_(1, index, counts[:, :, 0].t())
    else:
        total.index_add_(0, index, counts[:, 0, :])
    apply_counts_(device, state, total, generator, cfg.pulse_application)


def post_update_array_(device: Any, state: Any, generator: torch.Generator) -> None:
    """Per-step slow physics of one array: decay and diffusion (or a compound's own post-update)."""
    if isinstance(device, Compound):
        device.post_update_(state, generator)
        return
    if getattr(device, "lifetime", 0) > 0:
        device.decay(state, generator)
    if getattr(device, "diffusion", 0) > 0:
        device.diffuse(state, generator)


_COUNT_CFG = {
    app: UpdateConfig(
        pulse_type="deterministic_implicit", desired_bl=1, fixed_bl=False, update_bl_management=False,
        update_management=False, pulse_application=app, backend="auto",
    )
    for app in ("exact", "closed_form")
}


def apply_counts_(device: Any, state: Any, counts: Tensor, generator: torch.Generator,
                  pulse_application: str = "exact", index: Index | None = None, columns: bool = True) -> None:
    """Apply ``|counts|`` pulses in direction ``sign(counts)`` to every element of one array, in place.

    ``counts`` has the array's shape, or — with ``index`` (a tensor, or a slice of consecutive
    vectors) — holds only the columns ``index`` as an (out, k) matrix (rows ``index`` as a (k, in)
    matrix if not ``columns``); all other elements get no pulse. Exactly as
    ``device.pulse_n(state, counts, generator, method="auto")``: the n-pulse closed form where it is
    exact, pulse by pulse otherwise (``pulse_application="closed_form"``: the device's closed form
    wherever it has one). Affine-step and ideal devices on the CPU (exact application) go through
    :func:`analogkit.update.kernels.kernel_apply_counts_`: one pass per row over the row or the
    given vectors; whole arrays of exp-/pow-/piecewise-step devices through
    :func:`analogkit.update.kernels_step.step_kernel_apply_counts_`. Given vectors of those
    devices are written through their update kernel: each non-zero column j (or row, whichever
    are fewer) becomes one sample of a ``deterministic_implicit`` update with BL = K = max|counts|, x = e_j,
    d = −counts[:, j]/K and lr = K·dw_min, so both scales are 1 and the count is
    round(K·1·|c|/K) = |c| (see :mod:`analogkit.update.trains`). Compounds apply counts their own way.
    """
    if (pulse_application == "exact" and not isinstance(device, Compound)
            and _kernel_counts_ok(device, state, pulse_application) and _kernels.kernel_supported(device, state)):
        # affine-step and ideal devices: one kernel pass per row, over the whole row or the given vectors
        if index is not None:
            index = index_tensor(index, counts.device)
        rows, cols = (None, index) if columns else (index, None)
        _kernels.kernel_apply_counts_(device, state, counts, rows, generator, cols=cols)
        return
    if (pulse_application == "exact" and index is None and not isinstance(device, Compound)
            and _kernel_counts_ok(device, state, pulse_application)
            and _kernels_step.step_kernel_supported(device, state)):
        # exp-, pow- and piecewise-step devices, whole array: one pass per row, pulses sorted by count
        _kernels_step.step_kernel_apply_counts_(device, state, counts, generator)
        return
    if index is not None and not isinstance(device, Compound) and pulse_application == "exact":
        k_max = int(counts.abs().max()) if counts.numel() else 0
        if k_max == 0:
            return
        if k_max <= SMALL_COUNTS:
            _pulse_vectors_(device, state, counts, index, columns, k_max, generator)
            return
    if index is not None:
        index = index_tensor(index, counts.device)
    if isinstance(device, Compound) or not _kernel_counts_ok(device, state, pulse_application):
        if index is not None:
            counts = _scatter_counts(counts, index, columns, tuple(state.w.shape))
        if isinstance(device, Compound):
            device.apply_counts_(state, counts, generator, pulse_application)
            return
        if not bool((counts != 0).any()):
            return
        method = "closed_form" if pulse_application == "closed_form" and has_closed_form(device) else "auto"
        device.pulse_n(state, counts, generator, method=method)
        return
    out, n_in = state.w.shape
    if index is None:
        index, columns = torch.arange(n_in, device=counts.device), True
    elif not columns:
        counts = counts.t()  # (in, k): the rows as columns of the transposed problem below
    k_max = int(counts.abs().max()) if counts.numel() else 0
    if k_max == 0:
        return
    nz = counts != 0
    f64 = torch.float64
    vec = nz.any(dim=0).nonzero().squeeze(1)  # the given vectors that have pulses
    other = nz.any(dim=1).nonzero().squeeze(1)  # positions along the vectors that have pulses
    length = n_in if columns else out  # size of the one-hot side of a vector-sample
    if vec.numel() <= other.numel():
        k = vec.numel()
        hot = torch.zeros((k, length), dtype=f64, device=counts.device)
        hot[torch.arange(k, device=counts.device), index.index_select(0, vec)] = 1.0
        vals = counts.index_select(1, vec).t().to(f64).div_(k_max)  # (k, out) or (k, in)
        x, d = (hot, -vals) if columns else (vals, -hot)
    else:
        k = other.numel()
        full_len = n_in if columns else out
        vals = torch.zeros((k, full_len), dtype=f64, device=counts.device)
        vals.index_copy_(1, index, counts.index_select(0, other).to(f64).div_(k_max))
        size = out if columns else n_in
        hot = torch.zeros((k, size), dtype=f64, device=counts.device)
        hot[torch.arange(k, device=counts.device), other] = 1.0
        x, d = (vals, -hot) if columns else (hot, -vals)
    cfg = _COUNT_CFG["closed_form" if pulse_application == "closed_form" else "exact"]
    dw = float(device.dw_min)
    _engine.pulsed_update_(device, state, x, d, dw * k_max, cfg, generator, dw_min=dw)


#: Largest count per element that :func:`apply_counts_` applies to selected vectors by whole-array
#: pulse slots in PyTorch (instead of a call of the fused kernel, whose thread pool next to PyTorch's
#: costs more than the work for a transfer's few single pulses; measured in benchmarks/algorithms_step.py).
SMALL_COUNTS = 4


def _pulse_vectors_(device: Device, state: DeviceState, counts: Tensor, index: Index, columns: bool, k_max: int,
                    generator: torch.Generator) -> None:
    """Counts on the vectors ``index`` as pulse slots: slot k pulses every element with |count| >= k.

    Elements are independent, so this is the same sequence of pulses per element as ``pulse_n``'s
    loop. Consecutive vectors (a slice) are pulsed in place through views; otherwise the selected
    vectors' state is copied and the weight and write noise go back.
    """
    dim = 1 if columns else 0
    names = set(device._STEP_EXTRAS) | ({"write_noise"} & set(state.extra))
    sub = DeviceState(**{k: take(getattr(state, k), index, dim) for k in _CORE},
                      extra={k: take(v, index, dim) for k, v in state.extra.items() if k in names})
    if k_max == 1:
        device.pulse(sub, counts, generator)
    else:
        mag, sign = counts.abs(), counts.sign()
        for k in range(1, k_max + 1):
            device.pulse(sub, torch.where(mag >= k, sign, torch.zeros_like(sign)), generator)
    put_(state.w, index, dim, sub.w)
    if "write_noise" in state.extra:
        put_(state.extra["write_noise"], index, dim, sub.extra["write_noise"])


def _kernel_counts_ok(device: Any, state: Any, pulse_application: str) -> bool:
    if not isinstance(device, Device) or state.w.dim() != 2:
        return False
    cfg = _COUNT_CFG["closed_form" if pulse_application == "closed_form" else "exact"]
    return _engine.select_backend(device, state, cfg) == "numba"


def _scatter_counts(counts: Tensor, index: Tensor, columns: bool, shape: tuple[int, ...]) -> Tensor:
    full = torch.zeros(shape, dtype=counts.dtype, device=counts.device)
    if columns:
        full.index_copy_(1, index, counts)
    else:
        full.index_copy_(0, index, counts)
    return full


def read_columns(device: Any, state: Any, index: Index, io: IOConfig, generator: torch.Generator,
                 columns: bool = True) -> Tensor:
    """Analog read of columns ``index`` (or rows, if not ``columns``) of one array: (k, out) (or (k, in)).

    One MVM through the periphery ``io`` with one-hot inputs e_j, all k vectors at once (each with
    its own noise management, noise and ADC), as a transfer read on the chip would do it. Where the
    input stage keeps a one-hot input one-hot (no input noise, no stochastic rounding: the zeros
    stay exact zeros and draw nothing) only the selected vectors contribute, so the MVM runs on them
    alone — the k×k unit inputs times the (out, k) sub-matrix — with the same draws and results.
    """
    w = device.apparent_weight(state)
    if not columns:
        w = w.t()  # the rows of W are the columns of Wᵀ
    if io.ideal or (io.inp_noise == 0 and not io.inp_sto_round):
        w = take(w, index, 1)
        k = w.shape[1]
        x = torch.eye(k, dtype=w.dtype, device=w.device).unsqueeze(1)
    else:
        idx = index_tensor(index, w.device)
        k = idx.numel()
        x = torch.zeros((k, 1, w.shape[1]), dtype=w.dtype, device=w.device)
        x[torch.arange(k, device=w.device), 0, idx] = 1.0
    w = w.contiguous()
    y = analog_mvm(x, w.unsqueeze(0), TileGrid.for_matrix(w.shape[0], w.shape[1], 0, 0), io, generator)
    return y[:, 0]


def one_hot(index: Tensor, size: int, dtype: torch.dtype) -> Tensor:
    x = torch.zeros((index.numel(), size), dtype=dtype, device=index.device)
    x[torch.arange(index.numel(), device=index.device), index] = 1.0
    return x


def due(before: int, after: int, every: float) -> int:
    """How many multiples of ``every`` the counter passed going from ``before`` to ``after`` (0 if every <= 0)."""
    if every <= 0:
        return 0
    return int(math.floor(after / every + 1e-9)) - int(math.floor(before / every + 1e-9))


# ---------------------------------------------------------------------------------------------
# The compound interface
# ---------------------------------------------------------------------------------------------
@dataclass
class Compound(ConfigBase):
    """Base of compound devices: arrays of devices (and digital state) used like one device.

    Subclasses implement :meth:`sub_devices`, :meth:`hidden_weight`, :meth:`apparent_weight`,
    :meth:`set_weights`, :meth:`pulsed_update_` and :attr:`pulse_granularity`, and may add own tensors
    in :meth:`_own_tensors` (each with the leading dimensions of the array shape, i.e. the tile's
    group dimension, so that per-group views exist).
    """

    kind: ClassVar[str] = ""

    # -- structure ------------------------------------------------------------------------------
    def sub_devices(self) -> list[Any]:
        """The arrays this compound holds, in order (their states are ``state.devices``)."""
        raise NotImplementedError

    def _own_tensors(self, shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype) -> dict[str, Tensor]:
        return {}

    def _check_devices(self, field: str, devices: Any, n_min: int, n_max: int | None = None) -> None:
        if not isinstance(devices, (list, tuple)):
            self._fail(field, devices, "use a list of device configs (for example [SoftBoundsDevice(), SoftBoundsDevice()])")
        n = len(devices)
        if n < n_min or (n_max is not None and n > n_max):
            want = f"exactly {n_min}" if n_max == n_min else (f"{n_min} to {n_max}" if n_max else f"at least {n_min}")
            self._fail(field, devices, f"use {want} device configs")
        for k, dev in enumerate(devices):
            if not is_array_device(dev):
                self._fail(f"{field}[{k}]", dev, "use a device config (for example SoftBoundsDevice()) or a compound")

    # -- building -------------------------------------------------------------------------------
    def build_state(self, shape: tuple[int, ...] | torch.Size, generator: torch.Generator,
                    dtype: torch.dtype = torch.float32) -> CompoundState:
        """Build every array (in order, from ``generator``) and the compound's own tensors.

        ``shape`` is (..., out, in), usually (groups, out, in).
        """
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"{type(self).__name__}.build_state: generator must be a torch.Generator, got {generator!r}")
        shape = tuple(int(s) for s in shape)
        if len(shape) < 2:
            raise ValueError(f"{type(self).__name__}.build_state: shape {shape} is not allowed; use (..., out, in)")
        subs = [dev.build_state(shape, generator, dtype) for dev in self.sub_devices()]
        index = self.weight_index()
        own = {} if index is not None else {"w": torch.zeros(shape, dtype=dtype, device=generator.device)}
        own.update(self._own_tensors(shape, generator, dtype))
        state = CompoundState(subs, own, index)
        self.refresh_weight_(state)
        return state

    def state_from_tensors(self, tensors: Mapping[str, Tensor]) -> CompoundState:
        """The state on the given named tensors (as from ``build_state(...).tensors()``), as views."""
        devices = self.sub_devices()
        index = self.weight_index()
        per: list[dict[str, Tensor]] = [{} for _ in devices]
        own: dict[str, Tensor] = {}
        for name, t in tensors.items():
            head, sep, rest = name.partition(SEP)
            if sep and head.startswith("d") and head[1:].isdigit() and int(head[1:]) < len(devices):
                per[int(head[1:])][rest] = t
            elif name == "w" and index is not None:
                per[index]["w"] = t
            else:
                own[name] = t
        return CompoundState([state_of(dev, p) for dev, p in zip(devices, per)], own, index)

    # -- reading --------------------------------------------------------------------------------
    def hidden_weight(self, state: CompoundState) -> Tensor:
        """The effective weight from the arrays' hidden weights (no write noise)."""
        raise NotImplementedError

    def apparent_weight(self, state: CompoundState, generator: torch.Generator | None = None) -> Tensor:
        """The weight the forward and backward passes read (with the arrays' write noise)."""
        raise NotImplementedError

    def weight_index(self) -> int | None:
        """The array whose hidden weight is the effective weight itself (no mirror needed), if any."""
        return None

    def refresh_weight_(self, state: CompoundState) -> None:
        """Update the mirror ``state.w`` of the effective hidden weight (nothing to do if it is an array's own)."""
        if state.weight_index is None:
            state.w.copy_(self.hidden_weight(state))

    @property
    def pulse_granularity(self) -> float:
        """The weight change of one pulse on the compound (used by an enclosing compound)."""
        raise NotImplementedError

    # -- changing -------------------------------------------------------------------------------
    def set_weights(self, state: CompoundState, w: Tensor, generator: torch.Generator | None = None) -> None:
        raise NotImplementedError

    def pulsed_update_(self, state: CompoundState, x: Tensor, d: Tensor, lr: float, cfg: UpdateConfig,
                       generator: torch.Generator) -> None:
        raise NotImplementedError

    def apply_counts_(self, state: CompoundState, counts: Tensor, generator: torch.Generator,
                      pulse_application: str = "exact") -> None:
        raise ValueError(
            f"{type(self).__name__}: pulses given as counts are not supported; use a device or a unit cell "
            "(vector, reference or one-sided) here"
        )

    def post_update_(self, state: CompoundState, generator: torch.Generator) -> None:
        """Once per optimizer step: each array's slow physics (decay, diffusion, nested post-updates)."""
        for dev, sub in zip(self.sub_devices(), state.devices):
            post_update_array_(dev, sub, generator)
        self.refresh_weight_(state)
