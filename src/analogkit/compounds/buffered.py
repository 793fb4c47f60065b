"""Buffered transfer compound (Tiki-Taka v2): reads of the fast array are filtered by a digital
buffer; only when the buffer crosses a threshold is a single pulse written to the slow array."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor

from analogkit.compounds.base import (
    CompoundState,
    Index,
    apply_counts_,
    as_index,
    granularity_of,
    put_,
    read_columns,
    register_compound,
    take,
)
from analogkit.compounds.buffer_step import buffer_step_
from analogkit.compounds.transfer import TransferCompound, duplicate_free_runs
from analogkit.update.config import UpdateConfig

__all__ = ["BufferedTransferCompound"]


def _single_pulse_update() -> UpdateConfig:
    return UpdateConfig(desired_bl=1, update_bl_management=False, update_management=False)


@register_compound
@dataclass
class BufferedTransferCompound(TransferCompound):
    """Tiki-Taka v2: a digital buffer H (one number per weight) low-pass filters the reads of A.

    Per mini-batch, A gets the gradient as in :class:`TransferCompound`; at each transfer the read
    column v = read(A e_j) is accumulated into the buffer and whole pulses are taken out of it::

        H[:, j] += λ_T·v / g,   g = thres_scale·dw_min(C)   (H counts pulses of C)
        n = trunc(H[:, j]), clipped to ±transfer_update.desired_bl
        C[:, j] gets |n| pulses in the direction of sign(n)
        forget_buffer:  H[:, j] ← momentum·H[:, j] where n ≠ 0;   else  H[:, j] ← H[:, j] − (1 − momentum)·n

    with λ_T = transfer_lr·λ (or transfer_lr if not scale_transfer_lr). The pulses on C are applied
    deterministically, as the incumbent's fused transfer kernel does (only ``desired_bl`` of
    ``transfer_update`` is used, as the largest count per transfer). Exactly two devices, [A, C].

    Source: Gokmen 2021, "Enabling training of neural networks on noisy hardware", Front. Artif.
    Intell. 4:699148 (TTv2); parameter names and defaults as AIHWKit's ``BufferedTransferCompound``
    (spec §1.9). The incumbent's ``step`` (the value fed to its pulse update) is not a field here:
    the transfer writes the integer counts themselves.
    """

    kind: ClassVar[str] = "buffered_transfer_compound"

    thres_scale: float = 1.0
    momentum: float = 0.1
    forget_buffer: bool = True
    transfer_update: UpdateConfig = field(default_factory=_single_pulse_update)

    _N_DEVICES: ClassVar[tuple[int, int | None]] = (2, 2)

    def validate(self) -> None:
        super().validate()
        self.check_range("thres_scale", 0, lo_open=True, allowed="use a number > 0 (threshold in units of the granularity)")
        self.check_range("momentum", 0, 1, allowed="use a number in [0, 1] (fraction kept on the buffer after a transfer)")
        self.check_bool("forget_buffer")

    def _own_tensors(self, shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype) -> dict[str, Tensor]:
        out = super()._own_tensors(shape, generator, dtype)
        out["buffer"] = torch.zeros(shape, dtype=dtype, device=generator.device)
        return out

    def _clear_buffers(self, state: CompoundState) -> None:
        state.buffer.zero_()

    # -- the scale from a read to buffer units ---------------------------------------------------
    def buffer_unit(self, n_vectors: int) -> float:
        """The weight change one unit of the buffer stands for (its threshold is 1)."""
        return self.thres_scale * granularity_of(self.unit_cell_devices[1])

    def buffer_scale(self, lr: float, lr_fast: float, n_vectors: int) -> float:
        lr_t = self.transfer_lr * (lr if self.scale_transfer_lr else 1.0)
        return lr_t / self.buffer_unit(n_vectors)

    # -- hooks for the chopped and dynamic variants ----------------------------------------------
    # ``idx`` selects the vectors of one run of reads: a slice where they are consecutive (the
    # sequential sweep; the hooks then work on views of the state), an index tensor otherwise.
    def _signs(self, state: CompoundState, idx: Index) -> Tensor | None:
        """(m, k) signs that undo the choppers for the vectors ``idx`` (None: no choppers)."""
        return None

    def _buffer_input(self, state: CompoundState, idx: Index, v: Tensor, signs: Tensor | None) -> Tensor:
        """What is added to the buffer (before scaling) for reads v (m, k) of vectors idx."""
        return v if signs is None else v * signs

    def _write_allowed(self, state: CompoundState) -> bool:
        return True

    def _after_reads(self, state: CompoundState, idx: Index, last: int, v: Tensor, generator: torch.Generator) -> None:
        """Bookkeeping after the vectors ``idx`` (the last one ``last``) were read (chopper flips, sweep counter)."""

    def _gather(self, t: Tensor, idx: Index) -> Tensor:
        """(m, k) entries of the vectors ``idx`` (columns, or rows) of the array-shaped ``t``: a view
        for a slice, a copy for an index tensor."""
        return take(t, idx, 1) if self.transfer_columns else take(t, idx, 0).t()

    def _store(self, t: Tensor, idx: Index, values: Tensor) -> None:
        """Write (m, k) ``values`` back as the vectors ``idx`` of the array-shaped ``t`` (nothing to
        do if ``values`` is the view :meth:`_gather` returned)."""
        if self.transfer_columns:
            put_(t, idx, 1, values)
        else:
            put_(t, idx, 0, values.t())

    def _transfer_(self, state: CompoundState, stage: int, index: list[int], lr: float, lr_fast: float,
                   cfg: UpdateConfig, generator: torch.Generator) -> None:
        (dev_a, dev_c), (s_a, s_c) = self.unit_cell_devices, state.devices
        n_vec = self._n_vectors(state.w.shape)
        scale = self.buffer_scale(lr, lr_fast, n_vec)
        max_steps = float(self.transfer_update.desired_bl)
        no_buffer = getattr(self, "no_buffer", False)
        cap = getattr(self, "buffer_cap", 0.0) * max_steps
        dev_t = state.w.device
        for run in duplicate_free_runs(index, n_vec, split_at_wrap=True):
            idx = as_index(run, dev_t)
            v = read_columns(dev_a, s_a, idx, self.transfer_forward, generator, self.transfer_columns).t()  # (m, k)
            signs = self._signs(state, idx)
            h = self._gather(state.buffer, idx)  # a view of the buffer for consecutive vectors
            # whole pulses: trunc(H) clipped to ±BL, i.e. the clipped H truncated (BL is an integer)
            h, counts, moved = buffer_step_(h, self._buffer_input(state, idx, v, signs), scale, max_steps,
                                            no_buffer=no_buffer, forget=self.forget_buffer, momentum=self.momentum,
                                            cap=cap)
            self._store(state.buffer, idx, h)
            if moved and self._write_allowed(state):
                apply_counts_(dev_c, s_c, counts if self.transfer_columns else counts.t(), generator,
                              self.transfer_update.pulse_application, index=idx, columns=self.transfer_columns)
            self._after_reads(state, idx, run[-1], v, generator)
