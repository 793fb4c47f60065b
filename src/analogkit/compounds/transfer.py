"""Transfer compound (Tiki-Taka v1): gradients accumulate on a fast array, read out column by column
into the slow array that holds the weight."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from analogkit.compounds.base import (
    Compound,
    CompoundState,
    due,
    granularity_of,
    hidden_weight_of,
    one_hot,
    read_columns,
    register_compound,
    update_array_,
    update_one_hot_,
)
from analogkit.config.base import ConfigBase
from analogkit.config.io import IOConfig
from analogkit.devices.base import Device
from analogkit.update.config import UpdateConfig

__all__ = ["TransferCompound", "duplicate_free_runs"]


def duplicate_free_runs(index: list[int], n: int, split_at_wrap: bool = False) -> list[list[int]]:
    """Cut a sequence of read indices into consecutive runs without repeated indices.

    Reads of one run can be done at once (one MVM, one vectorised write); a repeated index must see
    the effect of its earlier read, so it starts a new run. With ``split_at_wrap`` a run also ends
    after index ``n − 1`` (the end of a sweep over the array).
    """
    runs: list[list[int]] = []
    cur: list[int] = []
    seen: set[int] = set()
    for i in index:
        if i in seen:
            runs.append(cur)
            cur, seen = [], set()
        cur.append(i)
        seen.add(i)
        if split_at_wrap and i == n - 1:
            runs.append(cur)
            cur, seen = [], set()
    if cur:
        runs.append(cur)
    return runs


@register_compound
@dataclass
class TransferCompound(Compound):
    """Tiki-Taka (v1): the gradient is written to a fast array A; A is read periodically, a few
    columns at a time, and what is read is written to the slow array C. The weight is W = γA + C.

    Per mini-batch (x: (M, in), d: (M, out)), with the optimizer's learning rate λ::

        A ← A − λ_A·d xᵀ          (stochastic pulse update of A; λ_A = fast_lr·λ, or fast_lr if not scale_fast_lr)
        every transfer_every mini-batches (units_in_mbatch) or samples:
            for the next n_reads_per_transfer columns j (cyclic, or from a random start):
                v = read(A e_j)                      (analog MVM through transfer_forward)
                C ← C + λ_T·v e_jᵀ                    (pulse update with transfer_update; λ_T = transfer_lr·λ)
                with probability with_reset_prob: reset column j of A

    With more than two devices the transfers form a chain (device k → k + 1), stage k every
    ``transfer_every_vec[k]`` (default transfer_every·(n_vectors/n_reads)^k) with
    ``transfer_lr_vec[k]``; the weight is Σ_k γ_k W_k with γ_k = gamma^(n−1−k) unless ``gamma_vec``
    is given. ``transfer_columns=False`` reads rows (a transposed read) and writes them as rows.
    Programming a weight w sets the last device to w/γ_last and the others to 0.

    All reads due in one mini-batch are taken after the mini-batch's update of A and done together
    (one MVM of one-hot inputs, one pulsed write), cut only where a column would be read twice; the
    incumbent's CPU engine interleaves transfers with the samples when counting in samples.

    Source: Gokmen & Haensch 2020, "Algorithm for training neural networks on resistive device arrays",
    Front. Neurosci. 14:103 (Tiki-Taka); Wu et al. 2025 (NeurIPS, arXiv:2502.06309), eq. 9–11
    (γ > 0, "residual learning"); parameter names and defaults as AIHWKit's ``TransferCompound``
    (spec §1.9). The last device never transfers to itself (the incumbent's ``no_self_transfer``).
    """

    kind: ClassVar[str] = "transfer_compound"

    unit_cell_devices: list[ConfigBase] = field(default_factory=list)
    gamma: float = 0.0
    gamma_vec: list[float] = field(default_factory=list)
    transfer_every: float = 1.0
    transfer_every_vec: list[float] = field(default_factory=list)
    units_in_mbatch: bool = True
    n_reads_per_transfer: int = 1
    transfer_columns: bool = True
    with_reset_prob: float = 0.0
    random_selection: bool = False
    fast_lr: float = 1.0
    scale_fast_lr: bool = True
    transfer_lr: float = 1.0
    transfer_lr_vec: list[float] = field(default_factory=list)
    scale_transfer_lr: bool = True
    transfer_forward: IOConfig = field(default_factory=IOConfig)
    transfer_update: UpdateConfig = field(default_factory=UpdateConfig)

    _N_DEVICES: ClassVar[tuple[int, int | None]] = (2, None)

    # -- validation -----------------------------------------------------------------------------
    def validate(self) -> None:
        lo, hi = self._N_DEVICES
        self._check_devices("unit_cell_devices", self.unit_cell_devices, lo, hi)
        n = len(self.unit_cell_devices)
        self.check_range("gamma", allowed="use a finite number (weight of the fast array in W = γA + C)")
        self._check_vec("gamma_vec", n, "weights of the devices (empty: gamma^(n-1-k))")
        if self.gammas[-1] == 0:
            self._fail("gamma_vec", self.gamma_vec, "use a non-zero weight for the last (slow) device")
        self.check_range("transfer_every", 0, allowed="use a period >= 0 (0: no transfer)")
        self._check_vec("transfer_every_vec", n - 1, "periods of the n-1 transfers (empty: from transfer_every)", lo=0)
        self.check_bool("units_in_mbatch")
        self.check_int("n_reads_per_transfer", 1, allowed="use an integer >= 1 (vectors read per transfer)")
        self.check_bool("transfer_columns")
        self.check_range("with_reset_prob", 0, 1, allowed="use a probability in [0, 1]")
        if self.with_reset_prob > 0:
            if not self.transfer_columns:
                self._fail("with_reset_prob", self.with_reset_prob, "use 0 with transfer_columns=False (reset needs column reads)")
            for k, dev in enumerate(self.unit_cell_devices[:-1]):
                if not isinstance(dev, Device):
                    self._fail(f"unit_cell_devices[{k}]", dev, "use a pulsed device (reset needs one) when with_reset_prob > 0")
        self.check_bool("random_selection")
        self.check_range("fast_lr", 0, allowed="use a learning rate >= 0 (0: the optimizer's)")
        self.check_bool("scale_fast_lr")
        self.check_range("transfer_lr", 0, allowed="use a learning rate >= 0")
        self._check_vec("transfer_lr_vec", n - 1, "learning rates of the n-1 transfers (empty: transfer_lr)", lo=0)
        self.check_bool("scale_transfer_lr")
        self.check_type("transfer_forward", IOConfig, "use an IOConfig (the periphery of the transfer read)")
        self.check_type("transfer_update", UpdateConfig, "use an UpdateConfig (the pulse update of the transfer write)")

    def _check_vec(self, name: str, n: int, what: str, lo: float | None = None) -> None:
        vec = getattr(self, name)
        if not isinstance(vec, (list, tuple)) or (vec and len(vec) != n):
            self._fail(name, vec, f"use an empty list or {n} numbers: {what}")
        for v in vec:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or abs(v) == float("inf") or (lo is not None and v < lo):
                self._fail(name, vec, f"use finite numbers{'' if lo is None else f' >= {lo}'}: {what}")

    # -- structure ------------------------------------------------------------------------------
    def sub_devices(self) -> list[Any]:
        return list(self.unit_cell_devices)

    @property
    def gammas(self) -> list[float]:
        n = len(self.unit_cell_devices)
        if self.gamma_vec:
            return [float(g) for g in self.gamma_vec]
        return [float(self.gamma) ** (n - 1 - k) if k < n - 1 else 1.0 for k in range(n)]

    @property
    def pulse_granularity(self) -> float:
        return abs(self.gammas[-1]) * granularity_of(self.unit_cell_devices[-1])

    def weight_index(self) -> int | None:
        gam = self.gammas
        return len(gam) - 1 if gam[-1] == 1.0 and not any(gam[:-1]) else None

    def _n_vectors(self, shape: tuple[int, ...] | torch.Size) -> int:
        """Number of vectors one sweep reads: columns (in) or rows (out)."""
        return int(shape[-1] if self.transfer_columns else shape[-2])

    def _own_tensors(self, shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype) -> dict[str, Tensor]:
        lead, dev = shape[:-2], generator.device
        n = len(self.unit_cell_devices)
        return {
            "update_count": torch.zeros(lead, dtype=torch.int64, device=dev),
            "transfer_ptr": torch.zeros(lead + (n - 1,), dtype=torch.int64, device=dev),
        }

    def transfer_periods(self, n_vectors: int) -> list[float]:
        """Transfer period of each stage (in mini-batches or samples)."""
        n = len(self.unit_cell_devices)
        if self.transfer_every_vec:
            return [float(t) for t in self.transfer_every_vec]
        ratio = n_vectors / self.n_reads_per_transfer
        return [self.transfer_every * ratio**k for k in range(n - 1)]

    def transfer_lrs(self) -> list[float]:
        n = len(self.unit_cell_devices)
        return [float(t) for t in self.transfer_lr_vec] if self.transfer_lr_vec else [self.transfer_lr] * (n - 1)

    # -- reading --------------------------------------------------------------------------------
    def hidden_weight(self, state: CompoundState) -> Tensor:
        out = None
        for dev, sub, g in zip(self.unit_cell_devices, state.devices, self.gammas):
            if g != 0:
                term = hidden_weight_of(dev, sub) * g
                out = term if out is None else out.add_(term)
        return out

    def apparent_weight(self, state: CompoundState, generator: torch.Generator | None = None) -> Tensor:
        out = None
        for dev, sub, g in zip(self.unit_cell_devices, state.devices, self.gammas):
            if g == 0:
                continue
            term = dev.apparent_weight(sub)
            term = term if g == 1.0 else term * g
            out = term if out is None else out + term
        return out

    # -- changing -------------------------------------------------------------------------------
    def set_weights(self, state: CompoundState, w: Tensor, generator: torch.Generator | None = None) -> None:
        """The slow (last) device gets w/γ_last, every other device 0; digital buffers are cleared."""
        devs, subs = self.unit_cell_devices, state.devices
        for dev, sub in zip(devs[:-1], subs[:-1]):
            dev.set_weights(sub, torch.zeros_like(w), generator)
        devs[-1].set_weights(subs[-1], w / self.gammas[-1], generator)
        self._clear_buffers(state)
        self.refresh_weight_(state)

    def _clear_buffers(self, state: CompoundState) -> None:
        pass

    def fast_lr_for(self, state: CompoundState, x: Tensor, d: Tensor, lr: float, cfg: UpdateConfig) -> float:
        """Learning rate of the gradient write onto the fast array."""
        if self.fast_lr <= 0:
            return lr
        return self.fast_lr * lr if self.scale_fast_lr else self.fast_lr

    def _write_fast_(self, state: CompoundState, x: Tensor, d: Tensor, lr_fast: float, cfg: UpdateConfig,
                     generator: torch.Generator) -> None:
        update_array_(self.unit_cell_devices[0], state.devices[0], x, d, lr_fast, cfg, generator)

    def pulsed_update_(self, state: CompoundState, x: Tensor, d: Tensor, lr: float, cfg: UpdateConfig,
                       generator: torch.Generator) -> None:
        lr_fast = self.fast_lr_for(state, x, d, lr, cfg)
        self._write_fast_(state, x, d, lr_fast, cfg, generator)
        before = int(state.update_count)
        after = before + (1 if self.units_in_mbatch else x.shape[0])
        state.update_count.fill_(after)
        n_vec = self._n_vectors(state.w.shape)
        for stage, period in enumerate(self.transfer_periods(n_vec)):
            n_transfers = due(before, after, period)
            if n_transfers > 0:
                index = self._read_index(state, stage, n_transfers, n_vec, generator)
                self._transfer_(state, stage, index, lr, lr_fast, cfg, generator)
        self.refresh_weight_(state)

    def _read_index(self, state: CompoundState, stage: int, n_transfers: int, n_vec: int,
                    generator: torch.Generator) -> list[int]:
        """Vectors to read for ``n_transfers`` transfer events of ``stage``, in order."""
        k = self.n_reads_per_transfer
        if self.random_selection:
            starts = torch.randint(0, n_vec, (n_transfers,), generator=generator, device=generator.device).tolist()
            return [(s + i) % n_vec for s in starts for i in range(k)]
        ptr = state.transfer_ptr[stage]
        start = int(ptr)
        reads = n_transfers * k
        ptr.fill_((start + reads) % n_vec)
        return [(start + i) % n_vec for i in range(reads)]

    def _transfer_(self, state: CompoundState, stage: int, index: list[int], lr: float, lr_fast: float,
                   cfg: UpdateConfig, generator: torch.Generator) -> None:
        """TTv1: read the vectors and write them, scaled by the transfer lr, onto the next device."""
        devs, subs = self.unit_cell_devices, state.devices
        src, dst = devs[stage], devs[stage + 1]
        s_src, s_dst = subs[stage], subs[stage + 1]
        lr_t = self.transfer_lrs()[stage] * (lr if self.scale_transfer_lr else 1.0)
        if lr_t <= 0:
            return
        n_vec = self._n_vectors(state.w.shape)
        dev_t = state.w.device
        for run in duplicate_free_runs(index, n_vec):
            idx = torch.tensor(run, dtype=torch.int64, device=dev_t)
            v = read_columns(src, s_src, idx, self.transfer_forward, generator, self.transfer_columns)
            if self.transfer_columns:
                x, d = one_hot(idx, state.w.shape[-1], v.dtype), -v
            else:
                x, d = v, -one_hot(idx, state.w.shape[-2], v.dtype)
            update_one_hot_(dst, s_dst, x, d, lr_t, self.transfer_update, generator, self.transfer_columns)
            if self.with_reset_prob > 0:
                hit = torch.rand(idx.numel(), generator=generator, device=generator.device) < self.with_reset_prob
                if bool(hit.any()):
                    mask = torch.zeros(state.w.shape, dtype=torch.bool, device=dev_t)
                    mask[:, idx[hit]] = True
                    src.reset_devices(s_src, mask, generator)
