"""Chopped transfer compound (c-TTv2): TTv2 with sign choppers that cancel offsets of the fast array."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from analogkit.compounds.base import (
    CompoundState,
    Index,
    granularity_of,
    index_count,
    register_compound,
    take,
    update_array_,
)
from analogkit.compounds.buffered import BufferedTransferCompound, _single_pulse_update
from analogkit.update import kernels as _update_kernels
from analogkit.update.config import UpdateConfig

__all__ = ["ChoppedTransferCompound"]


def _sample_abs_max(t: Tensor) -> np.ndarray:
    """max_j |t[n, j]| per sample n, as float64 on the host (NaN where a sample holds one)."""
    t = t.detach()
    if t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64) and _update_kernels.HAVE_NUMBA:
        return _update_kernels.abs_max_rows(t.contiguous().numpy())
    return t.abs().amax(dim=1).to(torch.float64).cpu().numpy()


@register_compound
@dataclass
class ChoppedTransferCompound(BufferedTransferCompound):
    """Chopped TTv2: the gradient is written onto A with a sign c_j = ±1 per input (the chopper),
    and the sign is undone when A is read into the buffer, so a constant offset of A's reads
    (a reference or symmetry-point error) alternates in sign and averages out.

    Per mini-batch (λ the optimizer's learning rate)::

        A ← A − λ_A·(o ⊙ d)(c ⊙ x)ᵀ                       (pulse update; o: output choppers)
        each transfer (one vector j, cyclic, every transfer_every samples or mini-batches):
            v = read(A e_j)
            H[:, j] += c_j·(o ⊙ v)·λ_T/g;  n = trunc(H[:, j]) clipped to ±transfer_update.desired_bl
            C[:, j] gets n pulses;  H[:, j] ← momentum·H[:, j] where n ≠ 0  (or H − (1 − momentum)·n)
            c_j flips with probability in_chop_prob (in_chop_random), or — regular — all choppers
            flip in every P-th sweep, P = max(ceil(1/in_chop_prob), 2)
        after the last vector of a sweep: each o_i flips with probability out_chop_prob

    Learning rates (as documented for the incumbent's ``ChoppedTransferCompound``, spec §1.9)::

        λ_A = fast_lr·λ (scale_fast_lr) or fast_lr;   auto_scale: λ_A = fast_lr·BL·g_A/(x̄·d̄), with x̄, d̄
              running means (momentum auto_momentum, per sample) of max|x| and max|d|, BL = update desired_bl
        g   = buffer_granularity·thres_scale·g_A·(auto_granularity/(n_vectors·transfer_every) if auto_granularity > 0)
        λ_T = transfer_lr·λ (scale_transfer_lr) or transfer_lr;  correct_gradient_magnitudes: g ← g·g_C/g_A
              and λ_T ← λ_T/λ_A

    with g_A, g_C the pulse granularities (dw_min) of A and C. ``no_buffer``: H is not kept between
    reads (TTv1 with single-pulse, thresholded writes). Exactly two devices, [A, C]; reads are
    sequential (no random selection, no resets). Choppers are ±1 tensors of the state (in_chopper
    along the read vectors — columns, or rows with ``transfer_columns=False`` — and out_chopper
    along the other dimension), so checkpoints restore them.

    Source: Rasch, Carta, Fagbohungbe & Gokmen 2024, "Fast and robust analog in-memory deep neural
    network training", Nat. Commun. 15:7133 (arXiv:2303.04721, "Fast offset corrected in-memory
    training"), c-TTv2; defaults as AIHWKit's ``ChoppedTransferCompound``.
    """

    kind: ClassVar[str] = "chopped_transfer_compound"

    in_chop_prob: float = 0.1
    in_chop_random: bool = True
    out_chop_prob: float = 0.0
    buffer_granularity: float = 1.0
    auto_granularity: float = 0.0
    momentum: float = 0.0
    forget_buffer: bool = True
    no_buffer: bool = False
    units_in_mbatch: bool = False
    auto_scale: bool = False
    auto_momentum: float = 0.99
    correct_gradient_magnitudes: bool = False
    scale_fast_lr: bool = False
    transfer_update: UpdateConfig = field(default_factory=_single_pulse_update)

    def validate(self) -> None:
        super().validate()
        self.check_range("in_chop_prob", 0, 1, allowed="use a probability in [0, 1] (0: no input chopper, i.e. TTv2)")
        self.check_bool("in_chop_random")
        self.check_range("out_chop_prob", 0, 1, allowed="use a probability in [0, 1]")
        self.check_range("buffer_granularity", 0, allowed="use a number >= 0 (0 means 1)")
        self.check_range("auto_granularity", 0, allowed="use 0 (off) or a number of reads > 0")
        self.check_bool("no_buffer")
        self.check_bool("auto_scale")
        self.check_range("auto_momentum", 0, 1, lo_open=True, hi_open=True, allowed="use a number in (0, 1)")
        self.check_bool("correct_gradient_magnitudes")
        if self.random_selection:
            self._fail("random_selection", self.random_selection, "use False (chopped transfers read vectors in order)")
        if self.with_reset_prob > 0:
            self._fail("with_reset_prob", self.with_reset_prob, "use 0 (chopped transfers do not reset the fast array)")

    # -- state ----------------------------------------------------------------------------------
    def _own_tensors(self, shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype) -> dict[str, Tensor]:
        out = super()._own_tensors(shape, generator, dtype)
        lead, dev = shape[:-2], generator.device
        n_vec = self._n_vectors(shape)
        n_other = int(shape[-2] if self.transfer_columns else shape[-1])
        out["in_chopper"] = torch.ones(lead + (n_vec,), dtype=dtype, device=dev)
        out["out_chopper"] = torch.ones(lead + (n_other,), dtype=dtype, device=dev)
        out["sweep_count"] = torch.zeros(lead, dtype=torch.int64, device=dev)
        out["x_max_ema"] = torch.zeros(lead, dtype=torch.float64, device=dev)
        out["d_max_ema"] = torch.zeros(lead, dtype=torch.float64, device=dev)
        return out

    @property
    def chop_period(self) -> int:
        """Reads of a vector between regular chopper flips: max(ceil(1/in_chop_prob), 2)."""
        return max(int(math.ceil(1.0 / self.in_chop_prob - 1e-9)), 2) if self.in_chop_prob > 0 else 0

    # -- learning rates -------------------------------------------------------------------------
    def _update_auto_scale_(self, state: CompoundState, x: Tensor, d: Tensor) -> None:
        """Running means of max|x_n| and max|d_n|, per sample with rate (1 − auto_momentum)/M.

        Over the M samples in order, m ← (1 − τ)·m + τ·v_n for each v_n > 0, in closed form:
        m ← (1 − τ)^K·m + Σ_k τ(1 − τ)^(K−1−k)·v_k; the first value ever seen starts the mean.
        In float64 on the host: 2·M numbers per step, where tensor operations cost more in
        dispatch than in arithmetic.
        """
        tau = (1.0 - self.auto_momentum) / max(1, x.shape[0])
        for ema, t in ((state.x_max_ema, x), (state.d_max_ema, d)):
            vals = _sample_abs_max(t)
            vals = vals[vals > 0]  # (drops NaN too)
            if vals.size == 0:
                continue
            m0 = float(ema)
            if not m0 > 0:  # first value starts the mean
                m0, vals = float(vals[0]), vals[1:]
            k = vals.size
            weights = tau * (1.0 - tau) ** np.arange(k - 1, -1, -1, dtype=np.float64)
            ema.fill_(m0 * (1.0 - tau) ** k + float(np.dot(weights, vals)))

    def fast_lr_for(self, state: CompoundState, x: Tensor, d: Tensor, lr: float, cfg: UpdateConfig) -> float:
        if self.auto_scale and self.fast_lr > 0:
            self._update_auto_scale_(state, x, d)
            count_lr = self.fast_lr * cfg.desired_bl * granularity_of(self.unit_cell_devices[0])
            mx, md = float(state.x_max_ema), float(state.d_max_ema)
            return count_lr / (mx * md) if mx > 0 and md > 0 else count_lr
        return super().fast_lr_for(state, x, d, lr, cfg)

    def buffer_unit(self, n_vectors: int) -> float:
        g = self.buffer_granularity if self.buffer_granularity > 0 else 1.0
        g *= self.thres_scale * granularity_of(self.unit_cell_devices[0])
        if self.auto_granularity > 0:
            g *= self.auto_granularity / (n_vectors * self.transfer_every) if self.transfer_every > 0 else 1.0
        return g

    def buffer_scale(self, lr: float, lr_fast: float, n_vectors: int) -> float:
        lr_t = self.transfer_lr * (lr if self.scale_transfer_lr else 1.0)
        g = self.buffer_unit(n_vectors)
        if self.correct_gradient_magnitudes:
            g *= granularity_of(self.unit_cell_devices[1]) / granularity_of(self.unit_cell_devices[0])
            return lr_t / lr_fast / g if lr_fast > 0 else 0.0
        return lr_t / g

    # -- chopped write and read -----------------------------------------------------------------
    def _x_d_choppers(self, state: CompoundState) -> tuple[Tensor, Tensor]:
        if self.transfer_columns:
            return state.in_chopper, state.out_chopper
        return state.out_chopper, state.in_chopper

    def _write_fast_(self, state: CompoundState, x: Tensor, d: Tensor, lr_fast: float, cfg: UpdateConfig,
                     generator: torch.Generator) -> None:
        cx, cd = self._x_d_choppers(state)
        x = x * cx.to(x.dtype)
        d = d * cd.to(d.dtype)
        update_array_(self.unit_cell_devices[0], state.devices[0], x, d, lr_fast, cfg, generator)

    def _signs(self, state: CompoundState, idx: Index) -> Tensor | None:
        return state.out_chopper[:, None] * take(state.in_chopper, idx, 0)[None, :]

    def _flip_in_choppers_(self, state: CompoundState, idx: Index, generator: torch.Generator) -> Tensor | bool:
        """Flip the choppers of the vectors just read. Returns the (k,) bool mask of flipped ones, or
        a bool when all or none flipped (regular flips, or no chopper)."""
        if self.in_chop_prob <= 0:
            return False
        c = state.in_chopper
        if not self.in_chop_random:
            p = self.chop_period
            now = (int(state.sweep_count) % p) + 1 == p
            if now:
                if isinstance(idx, slice):
                    take(c, idx, 0).neg_()
                else:
                    c.index_copy_(0, idx, c.index_select(0, idx).neg_())
            return now
        k = index_count(idx)
        flip = torch.rand(k, generator=generator, device=generator.device).to(c.device) < self.in_chop_prob
        if isinstance(idx, slice):
            view = take(c, idx, 0)
            view.copy_(torch.where(flip, -view, view))
        else:
            old = c.index_select(0, idx)
            c.index_copy_(0, idx, torch.where(flip, -old, old))
        return flip

    def _end_of_sweep_(self, state: CompoundState, last: int, generator: torch.Generator) -> None:
        """After the last vector of a sweep (``last`` = n − 1): flip output choppers, count the sweep."""
        n_vec = state.in_chopper.shape[-1]
        if last != n_vec - 1:
            return
        if self.out_chop_prob > 0:
            o = state.out_chopper
            flip = torch.rand(o.shape, generator=generator, device=generator.device).to(o.device) < self.out_chop_prob
            o.copy_(torch.where(flip, -o, o))
        state.sweep_count.add_(1)

    def _after_reads(self, state: CompoundState, idx: Index, last: int, v: Tensor, generator: torch.Generator) -> None:
        self._flip_in_choppers_(state, idx, generator)
        self._end_of_sweep_(state, last, generator)
