"""Dynamic transfer compound (AGAD): chopped transfers against a reference estimated on the fly."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor

from analogkit.compounds.base import CompoundState, Index, register_compound, take
from analogkit.compounds.buffered import _single_pulse_update
from analogkit.compounds.chopped import ChoppedTransferCompound
from analogkit.update.config import UpdateConfig

__all__ = ["DynamicTransferCompound"]


@register_compound
@dataclass
class DynamicTransferCompound(ChoppedTransferCompound):
    """AGAD (analog gradient accumulation with dynamic reference): c-TTv2 whose reads of A are taken
    relative to the mean read of the previous chopper period instead of a programmed reference.

    For every element a running mean p of its reads is kept (exponential, rate
    s = min(tail_weightening/P, 1) per read, so the tail of a chopper period weighs most; P =
    max(ceil(1/in_chop_prob), 2) reads per period). When the chopper of vector j flips, the current
    mean becomes the reference p_ref of the next period. Each read v of vector j then adds::

        H[:, j] += c_j·(o ⊙ (v − p_ref[:, j]))·λ_T/g

    to the buffer, which is emptied into C by thresholded pulses exactly as in c-TTv2 (with
    ``buffer_cap``·desired_bl as a cap on |H| when ``forget_buffer`` is off). The difference of two
    means taken under opposite chopper signs removes any constant offset of A (the reference is never
    programmed), which makes AGAD insensitive to the reference offset and to the devices' symmetry
    point. Pulses are written to C only after the first P sweeps (when a first reference exists).
    Choppers flip regularly by default (``in_chop_random=False``); ``in_chop_prob`` must be > 0.

    Source: Rasch et al. 2024, Nat. Commun. 15:7133 (arXiv:2303.04721), AGAD, Fig. 3C/F (reference
    copied when the chopper changes); the reference estimate, tail weighting and warm-up follow the
    behaviour of AIHWKit's ``DynamicTransferCompound`` (spec §1.9). The std-error gate mentioned in
    the spec's summary is not part of that behaviour and is not modelled; neither is its
    ``experimental_correct_accumulation`` option.
    """

    kind: ClassVar[str] = "dynamic_transfer_compound"

    in_chop_prob: float = 0.1
    in_chop_random: bool = False
    tail_weightening: float = 5.0
    buffer_cap: float = 0.0
    momentum: float = 0.0
    forget_buffer: bool = True
    transfer_update: UpdateConfig = field(default_factory=_single_pulse_update)

    def validate(self) -> None:
        super().validate()
        if not self.in_chop_prob > 0:
            self._fail("in_chop_prob", self.in_chop_prob, "use a probability in (0, 1]: AGAD needs choppers")
        self.check_range("tail_weightening", 0, lo_open=True, allowed="use a number > 0 (weight of the tail of a chopper period)")
        self.check_range("buffer_cap", 0, allowed="use 0 (no cap) or a cap > 0 in units of transfer_update.desired_bl")

    def _own_tensors(self, shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype) -> dict[str, Tensor]:
        out = super()._own_tensors(shape, generator, dtype)
        dev = generator.device
        out["running_mean"] = torch.zeros(shape, dtype=dtype, device=dev)
        out["past_mean"] = torch.zeros(shape, dtype=dtype, device=dev)
        out["switched"] = torch.zeros(shape[:-2] + (self._n_vectors(shape),), dtype=dtype, device=dev)
        return out

    def _clear_buffers(self, state: CompoundState) -> None:
        super()._clear_buffers(state)
        state.running_mean.zero_()
        state.past_mean.zero_()

    @property
    def mean_rate(self) -> float:
        """Per-read rate of the running mean: min(tail_weightening/P, 1)."""
        return min(self.tail_weightening / self.chop_period, 1.0)

    def _buffer_input(self, state: CompoundState, idx: Index, v: Tensor, signs: Tensor | None) -> Tensor:
        switched = take(state.switched, idx, 0)
        ref = self._gather(state.past_mean, idx)
        if bool((switched > 0).any()):
            ref = torch.where(switched[None, :] > 0, self._gather(state.running_mean, idx), ref)
            self._store(state.past_mean, idx, ref)
            if isinstance(idx, slice):
                switched.zero_()
            else:
                state.switched.index_fill_(0, idx, 0.0)
        diff = v - ref
        return diff if signs is None else diff * signs

    def _write_allowed(self, state: CompoundState) -> bool:
        return int(state.sweep_count) > self.chop_period

    def _after_reads(self, state: CompoundState, idx: Index, last: int, v: Tensor, generator: torch.Generator) -> None:
        s = self.mean_rate
        mean = self._gather(state.running_mean, idx).mul_(1.0 - s).add_(v, alpha=s)  # in place for a slice
        self._store(state.running_mean, idx, mean)
        flip = self._flip_in_choppers_(state, idx, generator)
        if isinstance(idx, slice):
            if isinstance(flip, Tensor):
                take(state.switched, idx, 0).masked_fill_(flip, 1.0)
            elif flip:
                take(state.switched, idx, 0).fill_(1.0)
        elif isinstance(flip, Tensor):
            state.switched.index_fill_(0, idx[flip], 1.0)
        elif flip:
            state.switched.index_fill_(0, idx, 1.0)
        self._end_of_sweep_(state, last, generator)
