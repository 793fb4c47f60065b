"""Fused CPU kernel (numba) of the stochastic pulse update, for affine-step and ideal devices.

Same semantics as the reference back-end (:mod:`analogkit.update.reference`), other random
draws; the tests compare their statistics. Per call:

1. **Plan and trains** (samples split over threads when large): BL_n, A_n, B_n, then every row's
   and column's bit train, drawn up front with a counter-based generator: slot pair h of train t
   is the 64-bit draw mix(seed' + (t·P + h + 1)·γ) (SplitMix64 finaliser, γ the golden-ratio
   increment, P pairs per train), whose low and high halves are two 32-bit uniforms (a slot
   fires if u < p·2³²). The loop over trains is innermost, so it vectorises. A train is one uint64
   word (BL <= 64; longer trains, possible only with ``fixed_bl=False``, take several words).
   Firing columns of each sample are listed (compacted), and for every row the samples in which
   it fires (CSR), so rows and samples without coincidences cost nothing.
2. **Rows** (blocks of rows split over threads): rows are independent, so a thread takes whole
   rows and walks each row's firing samples in order: count = popcount(row bits & column bits),
   then the pulses are applied to w_ij. Every element sees its samples in order, as the exact
   semantics require. A sample whose columns mostly fire is counted in one vectorised popcount
   pass over the row; otherwise only its firing columns are visited. For such scattered visits
   the per-element parameters are read from a packed copy ([a_up, a_dn, w_min, w_max, …] side by
   side, one cache line per element, cached while the state's tensors are unchanged) and gathered
   in a tight loop before use, so that the cache misses overlap.

Applying the n pulses of one sample to one element (direction d = −sign(d_i·x_j)), for devices
whose mean step is affine in w (:class:`analogkit.devices.AffineStepDevice`; the reference device
reads w + r)::

    per pulse:     m = d·(a_d + b_d·(w + r)),  w ← clip(w + m + σ·(|m| or |a_d|)·ξ, w_min, w_max)
    closed form:   c = 1 + d·b_d, d₀ = m(w₀)
        mean = w₀ + d₀·Σ_{k<n} c^k
        var  = σ²d₀²·Σ_{k<n} q^{n−1−k} c^{2k}, q = c² + σ²b_d²    (multiplicative noise)
             = σ²a_d²·Σ_{k<n} c^{2k}                               (additive noise)
        w ← clip(mean + √var·ξ, w_min, w_max)      (sums by binary powers, or a 3-term series)

What is exact (``pulse_application="exact"``):

* pulse by pulse wherever the device's own ``pulse_n(method="auto")`` would loop (affine steps with
  multiplicative c2c noise in sparse samples; constant steps with σ > 0.32; overshooting steps
  without noise); the row's coinciding columns of a sample are sorted by count so that pulse k is
  one vectorised pass over a prefix, in the state's precision, with its Gaussians drawn in one go.
  Consecutive dense samples are applied as one group (:func:`_affine_group`) while no element
  collects more than GROUP_PULSES pulses and no count exceeds 32: each element's pulses in the
  group, in sample order, are a stream of direction bits (:func:`_stream_add`), so one sort and one
  gather serve the group (a constant step with σ = 0.6, dense update at 512, one core: 104 → 45
  ms; the same scheme serves the non-linear steps, :mod:`analogkit.update.kernels_step`). A
  sample with one-slot trains (BL = 1) has count 1 exactly where its row and column fire: one
  masked pass over the row where at least
  1/ONE_SLOT_MASKED of the columns fire, else one pass over its column list (the next row's
  parameters prefetched); a row's one-slot Gaussians are drawn as one block;
* the **series law** for affine steps with *multiplicative* c2c noise (soft bounds, linear steps,
  the ECRAM presets), dense samples. With m(w) = s·(w − w*) the signed mean step (s = d·b_d), a
  pulse multiplies m by f = 1 + s(1 + ση) (η ~ N(0, 1); the sign of m never changes while f > 0),
  so without clipping, exactly, w_c = w₀ + m₀·(e^S − 1)/s with S = Σ_{k<c} log f_k =
  c·log(1 + s) + Σ log(1 + εη_k), ε = sσ/(1 + s). To second order in ε,
  S = c·log(1 + s) + ε·Ση − ε²/2·Ση²; the pair (Ση, Ση²) is drawn exactly in law as
  (√c·Z₁, Z₁² + χ²_{c−1}) (the mean and the scatter of Gaussians are independent), χ²_k by the
  Wilson–Hilferty transform k·(1 − h + Z₂√h)³, h = 2/(9k) (Wilson & Hilferty 1931, PNAS 17:684).
  The Wasserstein-1 distance between the law of the drawn S and the exact one is at most
  WH_W1·ε²/2 + √15/3·ε³√c + 3/4·c·ε⁴ (the χ² approximation, W1 <= 0.021 for every k by quadrature;
  the third-order remainder ε³/3·Ση³ by its standard deviation; the fourth-order mean); an element
  and count where that exceeds SERIES_TOL = 2⁻²⁴ (the float32 resolution of w − w*, which is what S
  scales), or |s| > 0.1, or |S| > 1/2, or c·|s|(9.5σ ± 1) >= 1, is pulsed one by one. The step is
  computed in float32 with Taylor polynomials of log(1 + s)/s and (e^S − 1)/S (remainders below
  10⁻¹⁰ and 1.2·10⁻⁸). Clipping: pulse-by-pulse clipping could only have acted where the path left
  [w_min, w_max]. Ahead, the path cannot pass w*
  (f > 0 unless |η| > SERIES_ZMAX = 9.5, probability < 3·10⁻¹⁹ per train), so where w* lies on or
  inside the bound ahead (soft bounds) nothing is needed; elsewhere the element must be
  (c + √(2·CLIP_LOG)·σ√c)·M inside it, M >= max_k |m_k| (|m_k| <= |m₀|·(1 + |s|(9.5σ ± 1))^c, + if
  the step grows along the train).
  Behind, steps only return by noise: the partial sums X_k of m_k(1 + ση_k) satisfy, with
  λ = 2/(σ²M), E[e^{−λ·ΔX}] <= 1 per pulse, so P(min_k X_k <= −t) <= e^{−λt} (a supermartingale),
  and the element must be t = CLIP_LOG·σ²M/2 inside the bound behind. CLIP_LOG = 34: either event
  has probability < e^{−34} = 1.7·10⁻¹⁵. Elements that fail are pulsed one by one. The reference
  back-end (``backend="torch"``) always applies the pulses one by one;
* the closed form wherever ``pulse_n`` declares it exact: no c2c noise and c >= 0, or a constant
  step (c = 1), whose n-pulse sum is Gaussian (up to noisy steps that reverse direction, Φ(−1/σ) <
  10⁻³, the device's own accepted approximation);
* the closed form for affine steps with *additive* c2c noise (capacitor-like linear steps, soft
  bounds with a reference), dense samples: without clipping, w_c = mean_c + N_c with
  N_k = Σ_{l<k} q^{k−1−l}·σn·ξ_l, an exact Gaussian (the sum of independent Gaussian terms is
  drawn in one go). Clipping could only have acted if some N_k (k <= c) left [lo − path, hi − path];
  N_k = q^{k−1}·S_k with S_k a sum of independent symmetric terms, so by Lévy's inequality
  P(max_k |N_k| > MARGIN·σ|n|·√c·ρ^{c−1}) <= 4·Φ(−MARGIN) = 2.5·10⁻¹⁵ (ρ = max(q, 1/q), q > 0).
  Elements whose mean path comes closer to a bound than that are applied pulse by pulse;
* constant steps additionally sum over samples: per element the kernel accumulates the means and
  variances of its samples and the range of their partial sums (the mean path); if the mean path
  stays MARGIN·σ_total inside the bounds, w ← w + Σμ + σ_total·ξ with one Gaussian, else the
  element's samples are replayed one by one. Per-sample clipping could only have acted if the
  running sum of the noise strayed MARGIN·σ_total from 0; by Lévy's inequality that has probability
  <= 4·Φ(−MARGIN) = 2.5·10⁻¹⁵ per element and call (total-variation distance to the per-sample law).

Given counts per element (:func:`kernel_apply_counts_`, the transfers of the compounds): every
element on its own, one pass per row; whole rows of multiplicative affine steps in the series law
above, everything else pulse by pulse.

``pulse_application="closed_form"`` applies the closed form to every element and sample (an
approximation for state-dependent steps with noise: exact mean and variance, Gaussian shape,
clipping once per sample), one vectorised pass per dense sample.

Random numbers: every call takes one 63-bit seed from the tile's ``torch.Generator``; trains,
Gaussians (:mod:`analogkit.periphery.kernels`: vectorised Box–Muller for the batches of a row's
dense passes, ziggurat for single draws; one counter-based stream per row) and
mean-count dithers (keyed by element and sample) are functions of it, so results repeat from the
generator state and do not depend on the number of threads. Write noise of every touched element
is redrawn once at the end of its row (the same law as redrawing it after every sample).

Threads: plain Python threads running the kernels without the GIL (``nogil``), as many as
``torch.get_num_threads()``, only above :data:`PARALLEL_MIN_WORK`; no numba thread pool (its
OpenMP runtime next to PyTorch's spinning threads stalled small parallel calls for milliseconds,
measured, and its parallel variants doubled the compile time).
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from analogkit._jit_cache import drop_stale_cache
from analogkit.devices.base import (
    REVERSAL_PROBABILITY_LIMIT,
    AffineStepDevice,
    Device,
    DeviceState,
    _normal_cdf,
)
from analogkit.devices.constant_step import ConstantStepDevice
from analogkit.devices.ideal import IdealDevice
from analogkit.devices.linear_step import _LinearFamily
from analogkit.devices.soft_bounds_reference import SoftBoundsReferenceDevice
from analogkit.periphery import kernels as _pk
from analogkit.update.config import UpdateConfig
from analogkit.update.trains import CEIL_SLACK

HAVE_NUMBA = _pk.HAVE_NUMBA

__all__ = [
    "HAVE_NUMBA",
    "KERNEL_DEVICES",
    "PARALLEL_MIN_WORK",
    "KernelParams",
    "kernel_apply_counts_",
    "kernel_params",
    "kernel_split_counts",
    "kernel_supported",
    "kernel_update_",
    "register_kernel_device",
]

#: Element visits (Σ_n firing rows × firing columns) above which the parallel row kernel runs.
PARALLEL_MIN_WORK = 1 << 20
#: Train bits drawn (Σ samples × (in + out) × BL) above which the trains are drawn in parallel
#: (about 3 ms on one core). Below, a second thread costs more than it saves where a PyTorch
#: operation ran just before: PyTorch's OpenMP workers spin for milliseconds after each parallel
#: operation and take the second core's time (``reram_es`` dense step, 2M bits: 0.37 ms on one
#: thread, 0.29 ms on two threads beside sleeping OpenMP workers, 2.6 ms beside spinning ones).
PARALLEL_MIN_BITS = 1 << 24
#: Constant steps: a column whose mean path over the call keeps MARGIN·σ_total away from its bounds
#: gets the sum of its samples in one Gaussian draw; the per-sample clipping could only have acted if
#: the noise's running sum strayed beyond MARGIN·σ_total, probability <= 4·Φ(−MARGIN) = 2.5e-15.
MARGIN = 8.0
#: Multiplicative noise, series law: P(per-pulse clipping could have acted) <= e^−CLIP_LOG = 1.7e-15.
CLIP_LOG = 34.0
#: |η| <= SERIES_ZMAX for all pulses of a train except with probability <= 64·2Φ(−9.5) = 3e-19.
SERIES_ZMAX = 9.5
#: Largest allowed Wasserstein-1 distance between the drawn and the exact law of S = log Π f_k
#: (relative error of w − w*): 2⁻²⁴, the float32 resolution.
SERIES_TOL = 2.0**-24
#: W1 distance between the Wilson–Hilferty transform and χ²_k, max over k >= 1 (0.0204 at k = 1,
#: by quadrature of the quantile functions).
WH_W1 = 0.021
#: A fixed point w* beyond the bound ahead by at most this fraction of (|w_min| + |w_max|) counts as
#: on it (float32 rounding of b·(1 − w/b)); per-pulse clipping could move w by at most that much.
FIXED_POINT_SLACK = 2.0**-21

#: Column transfers (:func:`kernel_apply_counts_` with ``cols``): how many rows ahead the
#: elements to pulse are prefetched.
_AHEAD_ROWS = 4

#: One-slot trains: a sample whose firing columns are at least 1/ONE_SLOT_MASKED of the row is
#: applied as a masked pass over the whole row (vectorised, its cost set by the row's length)
#: instead of a pass over its column list (scattered visits, its cost set by the firing columns).
#: In training steps (cold caches) the masked pass won down to the sparsest samples measured, 12 %
#: of 512 columns (c-TTv2's sparse regime: 3.8 ms per step against 4.9–6.6 ms with 1/6 as the
#: threshold); the list keeps Analog SGD's sparse trains, with a few firing columns per sample.
ONE_SLOT_MASKED = 16

#: Interleaved sub-histograms of the per-row counting sort (breaks store-to-load chains).
_SORT_WAYS = 4
#: Affine steps with additive noise: while a row's dense samples have had at most this many pulses
#: per element on average, they go pulse by pulse (in groups) instead of through the closed form,
#: whose float64 pass over the row costs about as much as two pulses per element (soft bounds with
#: additive noise at 512, one core: pulses 27 vs 37 ms at 1.3 pulses per element, 45 vs 39 ms at
#: 2.5; the closed form is 9× faster at 31). Measured with it: reram_sb 46 → 35 ms, capacitor
#: 32 → 18 ms, reram_array_hfo2's c-TTv2 fast write 35 → 8 ms. (Passed at run time: tests force
#: either route.)
CLOSED_MIN_PULSES = 2.2
#: Pulse-by-pulse devices: consecutive dense samples are applied as one group, each element's pulses
#: in it a stream of direction bits, 32 per word, this many words (a compile-time constant).
STREAM_WORDS = 4
#: Pulses per element up to which consecutive dense samples are applied as one group (at most
#: 32·STREAM_WORDS; passed to both row kernels, this one's and kernels_step's, at run time, so
#: that the tests can make groups short).
GROUP_PULSES = 32 * STREAM_WORDS

# count modes of the row kernel
_STOCHASTIC, _IMPLICIT, _MEAN = 0, 1, 2
_COUNT_MODES = {"stochastic_compressed": _STOCHASTIC, "deterministic_implicit": _IMPLICIT, "mean_count": _MEAN}

if HAVE_NUMBA:
    from llvmlite import ir
    from numba import njit
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    from analogkit.periphery.kernels import _GOLDEN, _mix64, _unit53, gauss_scalar, row_normals

    _LO32 = np.uint64(0xFFFFFFFF)
    _SEED_COLS = np.uint64(0x6A09E667F3BCC909)
    _SEED_ROWS = np.uint64(0xBB67AE8584CAA73B)
    _SEED_NOISE = np.uint64(0x3C6EF372FE94F82B)
    _SLOW = np.uint64(0xD1B54A32D192ED03)
    _SEED_MEAN = np.uint64(0xA54FF53A5F1D36F1)

    @intrinsic
    def _popcount(typingctx, x):
        """Number of set bits of a uint64 (LLVM ctpop: POPCNT, or VPOPCNTQ when vectorised)."""
        sig = types.uint64(types.uint64)

        def codegen(context, builder, signature, args):
            return builder.ctpop(args[0])

        return sig, codegen

    # numba widens integer arithmetic to 64 bits, so a vectorised lane test or float-to-int step on
    # 32-bit data runs on 8-wide 64-bit vectors with widening and narrowing around it. These three
    # do the 32-bit operation itself (measured: 13 of the exp pass's ~75 vector instructions).
    @intrinsic
    def _bit_set32(typingctx, word, bit):
        """Whether ``word & bit`` is non-zero, in 32-bit arithmetic (both uint32)."""
        sig = types.boolean(types.uint32, types.uint32)

        def codegen(context, builder, signature, args):
            masked = builder.and_(args[0], args[1])
            return builder.icmp_unsigned("!=", masked, ir.Constant(ir.IntType(32), 0))

        return sig, codegen

    @intrinsic
    def _below32(typingctx, t, n):
        """Whether t < n for 0 <= t, n < 2³¹, compared as int32 (an int32 lane index)."""
        sig = types.boolean(types.int64, types.int64)

        def codegen(context, builder, signature, args):
            i32 = ir.IntType(32)
            return builder.icmp_signed("<", builder.trunc(args[0], i32), builder.trunc(args[1], i32))

        return sig, codegen

    @intrinsic
    def _pow2_f32(typingctx, n):
        """2ⁿ as a float32 for an integral float32 n ∈ [−126, 127]: the bits (int32(n) + 127) << 23."""
        sig = types.float32(types.float32)

        def codegen(context, builder, signature, args):
            i32 = ir.IntType(32)
            biased = builder.add(builder.fptosi(args[0], i32), ir.Constant(i32, 127))
            return builder.bitcast(builder.shl(biased, ir.Constant(i32, 23)), ir.FloatType())

        return sig, codegen

    @intrinsic
    def _prefetch(typingctx, arr, offset):
        """Ask for the cache line holding byte ``offset`` of ``arr``'s data to be brought into every
        cache level (LLVM prefetch: read, high locality; a hint, never a fault)."""
        sig = types.void(arr, types.int64)

        def codegen(context, builder, signature, args):
            data = context.make_array(signature.args[0])(context, builder, args[0]).data
            byte = ir.IntType(8)
            addr = builder.gep(builder.bitcast(data, byte.as_pointer()), [args[1]])
            i32 = ir.IntType(32)
            fnty = ir.FunctionType(ir.VoidType(), [byte.as_pointer(), i32, i32, i32])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
            builder.call(fn, [addr, i32(0), i32(3), i32(1)])
            return context.get_dummy_value()

        return sig, codegen

    @njit(inline="always", cache=True, error_model="numpy")
    def _prefetch_row(arr, i):
        """Prefetch row i of a C-contiguous array (one hint per 64-byte line)."""
        row_bytes = arr.itemsize * (arr.size // arr.shape[0])
        first = i * row_bytes
        for off in range(0, row_bytes, 64):
            _prefetch(arr, first + off)

    @njit(cache=True, error_model="numpy")
    def _abs_max_bits(bits, out):
        """Per row, the largest IEEE bit pattern with the sign cleared: that of max |a| (for
        non-negative floats the patterns order as the values, and every NaN's lies above +inf's, so
        a NaN wins). An integer max reduction vectorises; a float one that lets NaN through does not."""
        sign = (bits.dtype.type(1) << bits.dtype.type(8 * bits.itemsize - 1))
        magnitude = ~sign
        for n in range(bits.shape[0]):
            m = bits.dtype.type(0)
            for j in range(bits.shape[1]):
                m = max(m, bits[n, j] & magnitude)
            out[n] = m

    @njit(cache=True, error_model="numpy")
    def _plan(x_max, d_max, lr, dw_min, desired_bl, bl_mgmt, um, k_um, fixed_long, bl, a_sc, b_sc):
        """BL_n, A_n, B_n per sample (formulas of :mod:`analogkit.update.trains`) from the samples'
        largest |x| and |d| (NaN if a sample holds one: it is skipped); returns Σ BL_n."""
        total = 0
        for n in range(x_max.shape[0]):
            xm = x_max[n]
            dm = d_max[n]
            if not (xm > 0.0 and dm > 0.0 and lr > 0.0):
                bl[n] = 0
                a_sc[n] = 0.0
                b_sc[n] = 0.0
                continue
            if bl_mgmt:
                b = int(math.ceil(lr * xm * dm / dw_min * (1.0 - CEIL_SLACK)))
                b = min(max(b, 1), desired_bl)
            elif fixed_long > 0:
                b = fixed_long
            else:
                b = desired_bl
            bl[n] = b
            total += b
            base = math.sqrt(lr / (dw_min * b))
            if um:
                a_sc[n] = base * math.sqrt(k_um * dm / xm)
                b_sc[n] = base * math.sqrt(xm / (k_um * dm))
            else:
                a_sc[n] = base
                b_sc[n] = base
        return total

    @njit(inline="always", cache=True, error_model="numpy")
    def _draw_bits(out, thr, stream, first, n_pairs, b, wd, live, n_live):
        """Word ``wd`` (slots 64·wd .. min(b, 64·wd + 64) − 1) of trains k = 0..len(out) − 1 with
        per-slot probability thr[k]/2³². Slot pair h of train t is the draw
        mix(stream + (t·n_pairs + h + 1)·G), t = first + k: low 32 bits → slot 2h, high → 2h + 1.
        The loop over trains is innermost, so it vectorises. Trains of probability 0 never fire:
        where fewer than half have a probability (a transfer's or refresh's one-hot samples), only
        those listed in live[:n_live] are drawn (the same draws, by their counter)."""
        t0 = 64 * wd
        width = min(b, t0 + 64) - t0
        for k in range(out.shape[0]):
            out[k] = np.uint64(0)
        if 2 * n_live < out.shape[0]:
            for q in range(n_live):
                k = live[q]
                word = np.uint64(0)
                for h in range((width + 1) >> 1):
                    counter = np.uint64((t0 >> 1) + h + 1)
                    v = _mix64(stream + (np.uint64(first + k) * n_pairs + counter) * _GOLDEN)
                    word |= (np.uint64(1) << np.uint64(2 * h)) if (v & _LO32) < thr[k] else np.uint64(0)
                    if 2 * h + 1 < width:
                        word |= (np.uint64(1) << np.uint64(2 * h + 1)) if (v >> np.uint64(32)) < thr[k] else np.uint64(0)
                out[k] = word
            return
        for h in range((width + 1) >> 1):
            counter = np.uint64((t0 >> 1) + h + 1)
            lo_bit = np.uint64(1) << np.uint64(2 * h)
            hi_bit = (np.uint64(1) << np.uint64(2 * h + 1)) if 2 * h + 1 < width else np.uint64(0)
            for k in range(out.shape[0]):
                v = _mix64(stream + (np.uint64(first + k) * n_pairs + counter) * _GOLDEN)
                word = out[k]
                if (v & _LO32) < thr[k]:
                    word |= lo_bit
                if (v >> np.uint64(32)) < thr[k]:
                    word |= hi_bit
                out[k] = word

    @njit(inline="always", cache=True, error_model="numpy")
    def _live_list(thr, live):
        """The trains with a non-zero firing threshold, ascending, into ``live``; returns how many."""
        n_live = 0
        for k in range(thr.shape[0]):
            live[n_live] = k
            n_live += 1 if thr[k] != np.uint64(0) else 0
        return n_live

    @njit(inline="always", cache=True, error_model="numpy")
    def _fired_list(words, out):
        """The positions k with words[k] ≠ 0, ascending, into ``out``; returns how many. A 64-bit
        mask per 64 positions (a vectorised pass), then its set bits one by one: the cost follows
        the firing trains, and no store waits on the previous one's count (a compaction loop over
        every position carries that dependency: 0.8 µs per 512 trains, measured)."""
        n = words.shape[0]
        cnt = 0
        for base in range(0, n, 64):
            mask = np.uint64(0)
            for t in range(min(64, n - base)):
                mask |= np.uint64(1 if words[base + t] != np.uint64(0) else 0) << np.uint64(t)
            while mask != np.uint64(0):
                low = mask & (~mask + np.uint64(1))
                out[cnt] = base + np.int64(_popcount(low - np.uint64(1)))
                cnt += 1
                mask ^= low
        return cnt

    @njit(inline="always", cache=True, error_model="numpy")
    def _sample_trains(n, x, d, mode, x_res, d_res, seed, n_pairs, bl, a_sc, b_sc,
                       colbits, colsgn, colval, colidx, nact, rowbits, rowsgn, rowval, rowidx, nrow):
        """Trains of sample ``n``: column words (full and a compacted index list of firing columns),
        row words, or the (quantised) probabilities for the count modes without trains."""
        n_in, n_out = x.shape[1], d.shape[1]
        nw = colbits.shape[1]
        b = bl[n]
        nact[n] = 0
        nrow[n] = 0
        if b == 0:
            return
        a_n = a_sc[n]
        b_n = b_sc[n]
        two32 = 4294967296.0
        if mode == _STOCHASTIC:
            # (thresholds and signs in one vectorised loop, the list of trains with a probability in
            # another; where fewer than half have one, only those are drawn and scanned for pulses)
            thr = np.empty(n_in, np.uint64)
            live = np.empty(max(n_in, n_out), np.int64)  # the trains with a probability
            for j in range(n_in):
                xv = x[n, j]
                thr[j] = np.uint64(min(a_n * abs(xv), 1.0) * two32)
                colsgn[n, j] = 1 if xv > 0 else -1
            n_live = _live_list(thr, live)
            for wd in range(nw):
                _draw_bits(colbits[n, wd], thr, seed ^ _SEED_COLS, n * n_in, n_pairs, b, wd, live, n_live)
            # (single-word trains, all scanned: from bit masks; otherwise compacted without a branch,
            # a firing test per train being a coin flip for the branch predictor; cnt <= q, so the
            # write past the last entry stays in the row)
            scan = 2 * n_live < n_in
            cnt = 0
            if nw == 1 and not scan:
                cnt = _fired_list(colbits[n, 0], colidx[n])
            else:
                for q in range(n_live if scan else n_in):
                    j = live[q] if scan else q
                    bits = colbits[n, 0, j]
                    for wd in range(1, nw):
                        bits |= colbits[n, wd, j]
                    colidx[n, cnt] = j
                    cnt += 1 if bits != np.uint64(0) else 0
            nact[n] = cnt
            thr_r = np.empty(n_out, np.uint64)
            for i in range(n_out):
                dv = d[n, i]
                thr_r[i] = np.uint64(min(b_n * abs(dv), 1.0) * two32)
                rowsgn[n, i] = 1 if dv > 0 else -1
            n_live = _live_list(thr_r, live)
            for wd in range(nw):
                _draw_bits(rowbits[n, wd], thr_r, seed ^ _SEED_ROWS, n * n_out, n_pairs, b, wd, live, n_live)
            if nw == 1:  # (the common case as a loop of its own: it vectorises)
                for i in range(n_out):
                    rowval[n, i] = 1.0 if rowbits[n, 0, i] != np.uint64(0) else 0.0
            else:
                for i in range(n_out):
                    bits = rowbits[n, 0, i]
                    for wd in range(1, nw):
                        bits |= rowbits[n, wd, i]
                    rowval[n, i] = 1.0 if bits != np.uint64(0) else 0.0
            scan = 2 * n_live < n_out
            rows = 0
            if nw == 1 and not scan:
                rows = _fired_list(rowbits[n, 0], rowidx[n])
            else:
                for q in range(n_live if scan else n_out):
                    i = live[q] if scan else q
                    rowidx[n, rows] = i
                    rows += 1 if rowval[n, i] != 0.0 else 0
            nrow[n] = rows if cnt > 0 else 0
            return
        r_x = x_res if x_res > 0 else 1.0 / b
        r_d = d_res if d_res > 0 else 1.0 / b
        cnt = 0
        for j in range(n_in):
            xv = x[n, j]
            colsgn[n, j] = 1 if xv > 0 else -1
            p = min(a_n * abs(xv), 1.0)
            if mode == _IMPLICIT:
                p = min(np.rint(p / r_x) * r_x, 1.0)
            colval[n, j] = p if p > 0.0 else 0.0
            if p > 0.0:
                colidx[n, cnt] = j
                cnt += 1
        nact[n] = cnt
        rows = 0
        for i in range(n_out):
            dv = d[n, i]
            rowsgn[n, i] = 1 if dv > 0 else -1
            q = min(b_n * abs(dv), 1.0)
            if mode == _IMPLICIT:
                q = min(np.rint(q / r_d) * r_d, 1.0)
            rowval[n, i] = q if q > 0.0 else 0.0
            if q > 0.0:
                rowidx[n, rows] = i
                rows += 1
        nrow[n] = rows if cnt > 0 else 0

    @njit(cache=True, error_model="numpy", nogil=True)
    def _trains_range(n0, n1, x, d, mode, x_res, d_res, seed, n_pairs, bl, a_sc, b_sc,
                      colbits, colsgn, colval, colidx, nact, rowbits, rowsgn, rowval, rowidx, nrow):
        """Trains of samples n0..n1 − 1 (samples are independent: threads may split them)."""
        for n in range(n0, n1):
            _sample_trains(n, x, d, mode, x_res, d_res, seed, n_pairs, bl, a_sc, b_sc,
                           colbits, colsgn, colval, colidx, nact, rowbits, rowsgn, rowval, rowidx, nrow)

    @njit(inline="always", cache=True, error_model="numpy")
    def _count(mode, i, n, j, b, rv, rowbits, colbits, colval, seed_mean, m_samples, n_in):
        """Pulses of element (i, j) in sample n (recomputable: mean_count's dither is keyed, not sequential)."""
        if mode == _STOCHASTIC:
            c = 0
            for wd in range(colbits.shape[1]):
                c += int(_popcount(rowbits[n, wd, i] & colbits[n, wd, j]))
            return c
        mu = float(b) * rv * colval[n, j]
        if mode == _IMPLICIT:
            return int(np.rint(mu))
        fl = math.floor(mu)
        u = _unit53(_mix64(seed_mean + np.uint64((i * m_samples + n) * n_in + j) * _GOLDEN))
        return int(fl) + (1 if u < mu - fl else 0)

    @njit(cache=True, error_model="numpy")
    def _row_lists(rowidx, nrow, row_ptr, row_smp):
        """For every row, the samples in which it fires, in sample order (CSR: row_ptr, row_smp)."""
        for i in range(row_ptr.shape[0]):
            row_ptr[i] = 0
        for n in range(nrow.shape[0]):
            for r in range(nrow[n]):
                row_ptr[rowidx[n, r] + 1] += 1
        for i in range(1, row_ptr.shape[0]):
            row_ptr[i] += row_ptr[i - 1]
        fill = row_ptr[:-1].copy()
        for n in range(nrow.shape[0]):
            for r in range(nrow[n]):
                i = rowidx[n, r]
                row_smp[fill[i]] = n
                fill[i] += 1

    @njit(inline="always", cache=True, error_model="numpy")
    def _series(n, y):
        """Σ_{k<n} (1 + y)^k for |y| <= 1e-6: n + C(n,2)·y + C(n,3)·y² (relative error < 1e-12 for n <= 64)."""
        return n + 0.5 * n * (n - 1.0) * y + n * (n - 1.0) * (n - 2.0) / 6.0 * y * y

    @njit(inline="always", cache=True, error_model="numpy")
    def _closed(c, slope, sigma, mult, nv, d0, small_x):
        """Moments of c pulses of an affine step (mean step d0 at the start, c = 1 + slope per pulse):
        (Σ_{k<c} (1+slope)^k, variance), see the module docstring. Scalars only and no branches, so
        that a loop over a row's elements vectorises (binary powers: c < 128). ``small_x``: the
        caller knows x = σ²slope²/(1+slope)² <= 1e-6 (then the q-power chain is not needed)."""
        n = float(c)
        cc = 1.0 + slope
        c2 = cc * cc
        b1 = cc
        b2 = b1 * b1
        b4 = b2 * b2
        b8 = b4 * b4
        b16 = b8 * b8
        b32 = b16 * b16
        b64 = b32 * b32
        pc = (b1 if c & 1 else 1.0) * (b2 if c & 2 else 1.0) * (b4 if c & 4 else 1.0) * (b8 if c & 8 else 1.0)
        pc *= (b16 if c & 16 else 1.0) * (b32 if c & 32 else 1.0) * (b64 if c & 64 else 1.0)  # cc^c
        y = c2 - 1.0
        if not mult:  # additive noise: Σ_{k<c} cc^{2k}, and geom, from one division (vector divisions are slow)
            inv = 1.0 / (slope * y)
            geom = _series(n, slope) if abs(slope) <= 1e-6 else (pc - 1.0) * y * inv
            s2_add = _series(n, y) if abs(y) <= 1e-6 else (pc * pc - 1.0) * slope * inv
            var = sigma * sigma * nv * nv * s2_add
            return geom, (var if sigma > 0.0 else 0.0)
        geom = _series(n, slope) if abs(slope) <= 1e-6 else (pc - 1.0) / slope
        # multiplicative noise: Σ_{k<c} q^{c-1-k} cc^{2k} with q = cc² + σ²slope²
        #   = cc^{2(c-1)}·Σ_{k<c} (1+x)^k,  x = σ²slope²/cc²   (3-term series for x <= 1e-6)
        #   = (q^c − cc^{2c})/(σ²slope²)                        (otherwise; q^c by binary powers)
        ss = (sigma * slope) * (sigma * slope)
        x = ss / c2 if c2 > 0.0 else 1.0
        if small_x:
            s2_mult = (pc * pc / c2) * _series(n, x)
        else:
            e1 = c2 + ss
            e2 = e1 * e1
            e4 = e2 * e2
            e8 = e4 * e4
            e16 = e8 * e8
            e32 = e16 * e16
            e64 = e32 * e32
            pq = (e1 if c & 1 else 1.0) * (e2 if c & 2 else 1.0) * (e4 if c & 4 else 1.0) * (e8 if c & 8 else 1.0)
            pq *= (e16 if c & 16 else 1.0) * (e32 if c & 32 else 1.0) * (e64 if c & 64 else 1.0)  # q^c
            s2_mult = (pc * pc / c2) * _series(n, x) if x <= 1e-6 else (pq - pc * pc) / ss
        var = sigma * sigma * d0 * d0 * s2_mult
        return geom, (var if sigma > 0.0 else 0.0)

    @njit(inline="always", cache=True, error_model="numpy")
    def _sort_by_count(cnt, n_cols, maxc, all_live, hist, start, n_ge, perm):
        """Counting sort of positions 0..n_cols − 1 by cnt (descending, count 0 last) into perm;
        n_ge[c] = how many have count >= c (c >= 1); returns that number for c = 1 (the positions
        with a count). ``all_live``: every count is > 0 (then counts of 1 only need no sort). Runs
        _SORT_WAYS interleaved sub-histograms, so that equal counts do not chain through one memory
        cell, and sorts the zeros as a bucket of their own: no branch and no shared scratch slot
        (measured 1.1 vs 3.1 ns per position)."""
        if maxc == 1 and all_live:
            for t in range(n_cols):
                perm[t] = t
            n_ge[1] = n_cols
            return n_cols
        for q in range(_SORT_WAYS):
            for c in range(maxc + 1):
                hist[q, c] = 0
        blk = n_cols // _SORT_WAYS
        for t in range(blk):
            for q in range(_SORT_WAYS):
                hist[q, cnt[q * blk + t]] += 1
        for t in range(_SORT_WAYS * blk, n_cols):
            hist[0, cnt[t]] += 1
        run = 0
        for c in range(maxc, -1, -1):
            for q in range(_SORT_WAYS):
                start[q, c] = run
                run += hist[q, c]
            n_ge[c] = run
        for t in range(blk):
            for q in range(_SORT_WAYS):
                tt = q * blk + t
                c = cnt[tt]
                pos = start[q, c]
                start[q, c] = pos + 1
                perm[pos] = tt
        for tt in range(_SORT_WAYS * blk, n_cols):
            c = cnt[tt]
            pos = start[0, c]
            start[0, c] = pos + 1
            perm[pos] = tt
        return n_ge[1]

    _FULL = np.uint32(0xFFFFFFFF)

    @intrinsic
    def _stream_bits32(typingctx, c, p, up):
        """The STREAM_WORDS direction words (uint32) to OR into a column's stream for a run of c
        pulses (0 <= c <= 32) starting at stream position p (c + p <= 32·STREAM_WORDS): bits
        p .. p + c − 1 set if ``up``, none otherwise. The run covers at most two words: its low part
        (the run shifted by p % 32) goes to word p // 32 and its high part to the next. 32-bit LLVM
        arithmetic throughout (numba would widen it to 64-bit lanes); shifts by 32, which LLVM
        leaves undefined, are only in the arms that a select discards."""
        sig = types.UniTuple(types.uint32, STREAM_WORDS)(types.int32, types.int32, types.boolean)

        def codegen(context, builder, signature, args):
            c, p, up = args
            i32 = ir.IntType(32)

            def k(v):
                return ir.Constant(i32, v)

            full = builder.lshr(k(0xFFFFFFFF), builder.sub(k(32), c))
            run = builder.select(builder.and_(up, builder.icmp_signed("!=", c, k(0))), full, k(0))
            s = builder.and_(p, k(31))
            lo = builder.shl(run, s)
            hi = builder.select(builder.icmp_signed("==", s, k(0)), k(0), builder.lshr(run, builder.sub(k(32), s)))
            q0 = builder.ashr(p, k(5))
            words = [builder.or_(builder.select(builder.icmp_signed("==", q0, k(q)), lo, k(0)),
                                 builder.select(builder.icmp_signed("==", q0, k(q - 1)), hi, k(0)))
                     for q in range(STREAM_WORDS)]
            return context.make_tuple(builder, signature.return_type, words)

        return sig, codegen

    @njit(inline="always", cache=True, error_model="numpy")
    def _stream_add(n, rs, cnt, colsgn, gpos, gd):
        """Append sample n to the group's direction streams: for every column j, bits gpos[j] ..
        gpos[j] + cnt[j] − 1 of its words gd[:, j] (32 pulses per word) set if its pulses go up
        (rs != colsgn[n, j]); then gpos[j] += cnt[j]. Counts are <= 32 (:func:`_stream_bits32`);
        branch-free over the words, so it vectorises."""
        for j in range(gpos.shape[0]):
            c = cnt[j]
            p = gpos[j]
            bits = _stream_bits32(c, p, rs != colsgn[n, j])
            for q in range(STREAM_WORDS):
                gd[q, j] |= bits[q]
            gpos[j] = p + c

    @njit(inline="always", cache=True, error_model="numpy")
    def _group_fit(cnt, gpos):
        """A dense sample's counts against the open group: (its largest count, the group's largest
        pulse total with it, its pulse sum)."""
        c_max = 0
        g_new = 0
        c_sum = 0
        for j in range(gpos.shape[0]):
            c = cnt[j]
            c_max = max(c_max, c)
            g_new = max(g_new, gpos[j] + c)
            c_sum += c
        return c_max, g_new, c_sum

    @njit(inline="always", cache=True, error_model="numpy")
    def _group_sorted(gpos, gd, g_max, hist, start, n_ge, perm, buf_d):
        """The group's columns sorted by pulse total (descending, into perm; n_ge as
        :func:`_sort_by_count`) and their direction words in that order (buf_d); returns how many
        columns have pulses."""
        n_live = _sort_by_count(gpos, gpos.shape[0], g_max, False, hist, start, n_ge, perm)
        for t in range(n_live):
            j = perm[t]
            for q in range(STREAM_WORDS):
                buf_d[q, t] = gd[q, j]
        return n_live

    @njit(inline="always", cache=True, error_model="numpy")
    def _group_clear(gpos, gd):
        """Empty the group: no pulses, no direction bits."""
        for j in range(gpos.shape[0]):
            gpos[j] = 0
        for q in range(STREAM_WORDS):
            for j in range(gpos.shape[0]):
                gd[q, j] = 0

    @njit(inline="always", cache=True, error_model="numpy", fastmath={"contract"})
    def _affine_group(i, g_max, gpos, gd, w, a_up, a_dn, b_up, b_dn, n_up, n_dn, ref, w_min, w_max, n_is_a, has_slope,
                      has_ref, mult, sigma, onez, sort_ws, buf_d, bufs, zall, base, ctr, touched):
        """Apply a group of dense samples of row i, pulse by pulse: column j has gpos[j] pulses, the
        k-th up if bit k % 32 of gd[k // 32, j] is set (:func:`_stream_add`). Columns sorted by pulse
        count (descending), both directions' parameters gathered once, all Gaussians drawn in one go;
        pulse k is one vectorised pass over the prefix of columns with more than k pulses, each lane
        blending its direction's parameters arithmetically (a select of two loads would compile to a
        gather). Then the weights are written back, the columns marked touched and the group
        cleared. ``sort_ws``: the counting sort's work arrays; ``bufs``: the sorted columns' weight,
        bounds, up and down steps, slopes and noise stds and reference. Returns (pulses, ctr)."""
        hist, start, n_ge, perm = sort_ws
        buf_w, buf_lo, buf_hi, buf_a, buf_ad, buf_b, buf_bd, buf_n, buf_nd, buf_r = bufs
        n_in = w.shape[1]
        one = onez[0]
        zero = onez[1]
        sg_f = onez[2]
        n_live = _group_sorted(gpos, gd, g_max, hist, start, n_ge, perm, buf_d)
        for t in range(n_live):
            j = perm[t]
            buf_w[t] = w[i, j]
            buf_lo[t] = w_min[i, j]
            buf_hi[t] = w_max[i, j]
            buf_a[t] = a_up[i, j]
            buf_ad[t] = -a_dn[i, j]
            if has_slope:
                buf_b[t] = b_up[i, j]
                buf_bd[t] = -b_dn[i, j]
            if not mult:
                buf_n[t] = sigma * abs(a_up[i, j] if n_is_a else n_up[i, j])
                buf_nd[t] = sigma * abs(a_dn[i, j] if n_is_a else n_dn[i, j])
            if has_ref:
                buf_r[t] = ref[i, j]
            touched[j] = True
        n_pulses = _total_pulses(n_ge, g_max)
        if sigma > 0.0:
            row_normals(zall[:n_pulses], base + np.uint64(ctr) * _GOLDEN)
            ctr += n_pulses
        off = 0
        for k in range(g_max):
            n_k = n_ge[k + 1]
            zk = zall[off:]  # a view per pass: zall[off + t] would compile to a masked gather
            dk = buf_d[k >> 5]
            bit = np.uint32(1 << (k & 31))
            if mult and has_slope and not has_ref:  # the common case, with fewer loads per pulse
                for t in range(n_k):
                    fu = one if _bit_set32(dk[t], bit) else zero
                    fd = one - fu
                    wv = buf_w[t]
                    mstep = fu * buf_a[t] + fd * buf_ad[t] + (fu * buf_b[t] + fd * buf_bd[t]) * wv
                    buf_w[t] = min(max(wv + mstep + sg_f * abs(mstep) * zk[t], buf_lo[t]), buf_hi[t])
            else:
                for t in range(n_k):
                    fu = one if _bit_set32(dk[t], bit) else zero
                    fd = one - fu
                    wv = buf_w[t]
                    mstep = fu * buf_a[t] + fd * buf_ad[t]
                    if has_slope:
                        mstep += (fu * buf_b[t] + fd * buf_bd[t]) * (wv + (buf_r[t] if has_ref else zero))
                    std = sg_f * abs(mstep) if mult else fu * buf_n[t] + fd * buf_nd[t]
                    buf_w[t] = min(max(wv + mstep + std * zk[t], buf_lo[t]), buf_hi[t])
            off += n_k
        for t in range(n_live):
            w[i, perm[t]] = buf_w[t]
        _group_clear(gpos, gd)
        return n_pulses, ctr

    @njit(inline="always", cache=True, error_model="numpy")
    def _total_pulses(n_ge, maxc):
        """Pulses of a sorted application: Σ_{c=1..maxc} n_ge[c] (pass k covers n_ge[k + 1] elements)."""
        n_pulses = 0
        for c in range(1, maxc + 1):
            n_pulses += n_ge[c]
        return n_pulses

    @njit(inline="always", cache=True, error_model="numpy")
    def _closed_row(i, n, rs, cnt, colsgn, w, a_up, a_dn, b_up, b_dn, n_up, n_dn, ref, w_min, w_max,
                    zbuf, unsafe, n_is_a, has_ref, mult, sigma, add_exact, small_x):
        """One dense sample of row i in closed form (a branch-free loop over the columns, so that it
        vectorises). With ``add_exact`` (additive noise, the exact mode), elements whose mean path
        comes within the Lévy margin of a bound (module docstring) keep their weight and are marked
        ``unsafe`` for the caller to pulse one by one."""
        for j in range(w.shape[1]):
            c = cnt[j]
            fu = 1.0 if rs != colsgn[n, j] else 0.0  # (blended: a select of two loads compiles to a gather)
            fd = 1.0 - fu
            sg = fu - fd
            av = fu * a_up[i, j] + fd * a_dn[i, j]
            bv = fu * b_up[i, j] + fd * b_dn[i, j]
            nv = av if n_is_a else fu * n_up[i, j] + fd * n_dn[i, j]
            rr = ref[i, j] if has_ref else 0.0
            w0 = w[i, j]
            slope = sg * bv
            d0 = sg * (av + bv * (w0 + rr))
            geom, var = _closed(c, slope, sigma, mult, nv, d0, small_x)
            mean = w0 + d0 * geom
            lo = w_min[i, j]
            hi = w_max[i, j]
            new = min(max(mean + math.sqrt(max(var, 0.0)) * zbuf[j], lo), hi)
            ok = True
            if add_exact:
                q = 1.0 + slope
                pc = 1.0 + slope * geom  # q^c
                rho = max(pc, q) / min(pc, q) if q > 0.0 else 1.0  # max(q^(c−1), q^(1−c))
                marg = MARGIN * sigma * abs(nv) * math.sqrt(float(c)) * rho
                ok = q > 0.0 and min(w0, mean) - marg >= lo and max(w0, mean) + marg <= hi
            live = c > 0
            keep = live & ok
            w[i, j] = new if keep else w0
            unsafe[j] = live != keep

    # float32 constants of the series law (a float64 literal would promote the whole loop to float64,
    # where the vector divisions and square roots cost four times as much)
    _F0, _F1, _FH = np.float32(0.0), np.float32(1.0), np.float32(0.5)
    _LOG1P_C = tuple(np.float32((-1.0) ** k / (k + 1)) for k in range(9))  # log(1 + s)/s = Σ (−s)^k/(k+1)
    _EXPM1_C = tuple(np.float32(1.0 / math.factorial(k + 1)) for k in range(8))  # (e^x − 1)/x = Σ x^k/(k+1)!

    @njit(inline="always", cache=True, error_model="numpy")
    def _horner(c, x):
        """Σ_k c[k]·x^k for a tuple of coefficients c, by Horner's rule (a constant trip count: the
        loop unrolls, and a caller's loop over elements still vectorises)."""
        p = c[len(c) - 1]
        for k in range(len(c) - 2, -1, -1):
            p = p * x + c[k]
        return p

    @njit(inline="always", cache=True, error_model="numpy")
    def _log1p_over(s):
        """log(1 + s)/s for |s| <= 0.1 in float32: Taylor series to s⁸ (remainder < 0.1⁹/10 = 10⁻¹⁰)."""
        return _horner(_LOG1P_C, s)

    @njit(inline="always", cache=True, error_model="numpy")
    def _expm1_over(x):
        """(e^x − 1)/x for |x| <= 1/2 in float32: Taylor series to x⁷ (remainder < 0.5⁸/9!·1.06 = 1.2·10⁻⁸)."""
        return _horner(_EXPM1_C, x)

    @njit(inline="always", cache=True, error_model="numpy")
    def _series_prep(i, a_up, a_dn, b_up, b_dn, sigma, prep):
        """Row i, per element j and direction d (0 up, 1 down), the count-independent parts of the
        series law, in float32: prep[d, :, j] = (a, s, log(1 + s)/s, g, s·g²/2, c_lim, x) with
        m(w) = a + s·(w + r) the signed mean step, g = σ/(1 + s), x = |s|·max(z_max·σ ± 1, 0) (+ if
        s > 0) so that |f| <= 1 + x for |η| <= z_max, and c_lim the largest count for which the law
        is within SERIES_TOL and c·x < 1 (−1 if |s| > 0.1)."""
        for d in range(2):
            for j in range(prep.shape[2]):
                a = float(a_up[i, j]) if d == 0 else -float(a_dn[i, j])
                s = float(b_up[i, j]) if d == 0 else -float(b_dn[i, j])
                g = sigma / (1.0 + s)
                eps = abs(s) * g
                e2 = eps * eps
                # W1 bound  α + β√c + γc <= tol  (module docstring) solved for √c, stably
                alpha = 0.5 * WH_W1 * e2
                beta = math.sqrt(15.0) / 3.0 * e2 * eps
                gamma = 0.75 * e2 * e2
                room = SERIES_TOL - alpha
                disc = math.sqrt(beta * beta + 4.0 * gamma * max(room, 0.0))
                rc_lim = 2.0 * room / (beta + disc) if beta + disc > 0.0 else 1e30
                c_lim = min(rc_lim * rc_lim if room > 0.0 else -1.0, 1e30)
                ax = abs(s) * max(SERIES_ZMAX * sigma + (1.0 if s > 0.0 else -1.0), 0.0)
                if ax > 0.0:
                    c_lim = min(c_lim, 1.0 / ax * (1.0 - 1e-6))
                if abs(s) > 0.1:
                    c_lim = -1.0
                prep[d, 0, j] = a
                prep[d, 1, j] = s
                prep[d, 2, j] = _log1p_over(np.float32(s))
                prep[d, 3, j] = g
                prep[d, 4, j] = 0.5 * s * g * g
                prep[d, 5, j] = c_lim
                prep[d, 6, j] = ax

    @njit(inline="always", cache=True, error_model="numpy")
    def _series_row(i, n, rs, cnt, colsgn, w, ref, w_min, w_max, zbuf, unsafe, has_ref, sigma, prep):
        """One dense sample of row i, affine steps with multiplicative c2c noise, in the series law of
        the module docstring (float32, branch-free over the columns, so that it vectorises). Elements
        where that law is not within SERIES_TOL, or where per-pulse clipping could have acted, keep
        their weight and are marked ``unsafe`` for the caller to pulse one by one. ``zbuf``: 2·n_in
        normals; ``prep``: :func:`_series_prep` of row i; ``has_ref`` a literal at the call (a runtime
        flag leaves a gather of ``ref`` in the loop). Only 32-bit types are loaded or stored (``cnt``
        is int32) and nothing is reduced (numba would widen an integer sum to int64): LLVM then picks
        16 lanes of float32 instead of 8 (measured 15 % less for the whole update). Square roots and
        divisions by c are computed, not looked up, and the direction's parameters are selected
        arithmetically: an indexed load, or a select of two loads (which LLVM turns into a select of
        addresses), becomes a gather (measured 2.5 vs 1.5 ns per element)."""
        n_in = w.shape[1]
        t_far = np.float32(0.5 * CLIP_LOG * sigma * sigma)
        t_tow = np.float32(math.sqrt(2.0 * CLIP_LOG) * sigma)
        slack = np.float32(FIXED_POINT_SLACK)
        two_ninths = np.float32(2.0 / 9.0)
        z2 = zbuf[n_in:]  # (a view: zbuf[n_in + j] would compile to a gather, numba's index may be negative)
        for j in range(n_in):
            c = cnt[j]
            cf = np.float32(c)
            fu = _F1 if rs != colsgn[n, j] else _F0  # up: 1·x + 0·y = x exactly
            fd = _F1 - fu
            a = fu * prep[0, 0, j] + fd * prep[1, 0, j]
            s = fu * prep[0, 1, j] + fd * prep[1, 1, j]
            lgs = fu * prep[0, 2, j] + fd * prep[1, 2, j]
            g = fu * prep[0, 3, j] + fd * prep[1, 3, j]
            q = fu * prep[0, 4, j] + fd * prep[1, 4, j]
            c_lim = fu * prep[0, 5, j] + fd * prep[1, 5, j]
            ax = fu * prep[0, 6, j] + fd * prep[1, 6, j]
            rr = np.float32(ref[i, j]) if has_ref else _F0
            w0 = np.float32(w[i, j])
            lo = np.float32(w_min[i, j])
            hi = np.float32(w_max[i, j])
            m0 = a + s * (w0 + rr)
            rc = math.sqrt(cf)
            # (Ση, Ση²) = (√c·Z₁, Z₁² + χ²_{c−1}); χ²_k by the Wilson–Hilferty transform of Z₂
            z1 = zbuf[j]
            kk = max(cf - _F1, _F1)
            h = two_ninths / kk
            cube = max(_F1 - h + z2[j] * math.sqrt(h), _F0)
            chi = kk * cube * cube * cube if cf > _F1 else _F0
            t = cf * lgs + g * rc * z1 - q * (z1 * z1 + chi)  # S/s
            big_s = s * t
            dw = m0 * t * _expm1_over(big_s)
            ok = (cf <= c_lim) & (abs(big_s) <= _FH)  # the law's tolerance and the series' domain
            # clipping: could a bound have acted during the train (probability > e^−CLIP_LOG)?
            y = cf * ax
            mm = abs(m0) * (_F1 + y + y * y)  # >= max_k |m_k|: (1 + x)^c <= e^y <= 1 + y + y² (y <= 1)
            dist_up = hi - w0
            dist_dn = w0 - lo
            tow = dist_up if m0 > _F0 else dist_dn
            far = dist_dn if m0 > _F0 else dist_up
            tau = slack * (abs(hi) + abs(lo))
            fixed_inside = (s < _F0) & (abs(m0) <= -s * (tow + tau))  # w* at or inside the bound ahead
            ok = ok & (far >= t_far * mm) & (fixed_inside | (tow >= (cf + t_tow * rc) * mm))
            live = cf > _F0
            wv = w[i, j]  # the state's precision (the step is computed in float32)
            keep = live & ok
            w[i, j] = min(max(wv + dw, w_min[i, j]), w_max[i, j]) if keep else wv
            bad = live != keep  # (``not`` in a vectorised loop costs a third of its time, measured)
            unsafe[j] = bad

    @njit(inline="always", cache=True, error_model="numpy")
    def _is_dense(mode, b, na, n_in, mult_exact):
        """Whether a sample of BL ``b`` with ``na`` firing columns is counted in one pass over each of
        its rows: its columns mostly fire. Not one-slot trains of a multiplicative affine step (count
        1 exactly where row and column fire: the one-slot passes are cheaper than the series law)."""
        return mode == _STOCHASTIC and 4 * na >= n_in and not (mult_exact and b == 1)

    @njit(inline="always", cache=True, error_model="numpy")
    def _one_pulse_row(i, n, rs, fire, w, a_up, a_dn, b_up, b_dn, ref, w_min, w_max, zcol, has_ref, mult, sigma):
        """One sample of one-slot trains on row i as a masked pass over the row: every column j with
        fire[n, j] ≠ 0 (the column's sign where it fires, else 0) gets one pulse of the affine step
        (up where the row's sign rs differs), w ← clip(w + m + σ·|m or a|·zcol[j]) with
        m = ±(a + b·(w + r)), in float32; the others keep their weight. Branch-free with 32-bit types
        only, so that it vectorises 16 lanes wide (see :func:`_series_row`): both directions'
        parameters are loaded and one is selected; ``has_ref`` and ``mult`` are literals."""
        sg = np.float32(sigma)
        for j in range(w.shape[1]):
            cs = fire[n, j]
            up = rs != cs
            au = a_up[i, j]
            ad = a_dn[i, j]
            bu = b_up[i, j]
            bd = b_dn[i, j]
            a = au if up else -ad
            b = bu if up else -bd
            wv = w[i, j]
            m = a + b * (wv + ref[i, j]) if has_ref else a + b * wv
            std = sg * abs(m if mult else a)
            new = min(max(wv + m + std * zcol[j], w_min[i, j]), w_max[i, j])
            w[i, j] = new if cs != 0 else wv

    @njit(inline="always", cache=True, error_model="numpy")
    def _redraw_marked(i, n_scan, all_cols, tlist, touched, track, wn, wn_scale, base, ctr, slow):
        """End of row i: clear the marks of the touched columns (columns 0..n_scan − 1 if ``all_cols``,
        else tlist[:n_scan]) and, with ``track``, redraw their write noise (single draws from the row
        stream at ``ctr``). Returns (ctr, slow)."""
        for t in range(n_scan):
            j = t if all_cols else tlist[t]
            if touched[j]:
                touched[j] = False
                if track:
                    z, slow = gauss_scalar(base, ctr, slow)
                    ctr += 1
                    wn[i, j] = wn_scale * z
        return ctr, slow

    @njit(inline="always", cache=True, error_model="numpy")
    def _marked(rej, rej8, n_in, lst):
        """The positions j < n_in with rej[j] into lst (eight flags per word of rej8: clear words are
        skipped); returns how many."""
        n_pul = 0
        for q in range(rej8.shape[0]):
            if rej8[q] == 0:
                continue
            for j in range(8 * q, min(8 * q + 8, n_in)):
                lst[n_pul] = j
                n_pul += rej[j]
        return n_pul

    @njit(inline="always", cache=True, error_model="numpy")
    def _pulse_listed(i, n, rs, colsgn, lst, n_pul, cnt, w, a_up, a_dn, b_up, b_dn, n_up, n_dn, ref, w_min, w_max,
                      n_is_a, has_slope, has_ref, mult, sigma, zall, base, ctr):
        """Elements (i, lst[t]), t < n_pul, each with cnt[j] pulses in direction up = rs != colsgn[n, j],
        one after another with the per-pulse rule (module docstring); their Gaussians drawn in one
        go from the row stream at ``ctr``. Returns the advanced ``ctr``."""
        n_z = 0
        for t in range(n_pul):
            n_z += cnt[lst[t]]
        if sigma > 0.0:
            row_normals(zall[:n_z], base + np.uint64(ctr) * _GOLDEN)
            ctr += n_z
        k = 0
        for t in range(n_pul):
            j = lst[t]
            c = cnt[j]
            up = rs != colsgn[n, j]
            sg = 1.0 if up else -1.0
            av = a_up[i, j] if up else a_dn[i, j]
            bv = (b_up[i, j] if up else b_dn[i, j]) if has_slope else 0.0
            add_std = sigma * abs(av if n_is_a else (n_up[i, j] if up else n_dn[i, j]))
            rr = ref[i, j] if has_ref else 0.0
            lo = w_min[i, j]
            hi = w_max[i, j]
            wv = w[i, j]
            for _ in range(c):
                mstep = sg * (av + bv * (wv + rr))
                zk = zall[k] if sigma > 0.0 else 0.0
                wv = min(max(wv + mstep + (sigma * abs(mstep) if mult else add_std) * zk, lo), hi)
                k += 1
            w[i, j] = wv
        return ctr

    @njit(cache=True, error_model="numpy", nogil=True, fastmath={"contract"})
    def _row_block(
        i0, i1, w, a_up, b_up, a_dn, b_dn, n_up, n_dn, ref, w_min, w_max, wn,
        pk, n_is_a, has_slope, has_ref, mult, sigma, force_closed, const_closed, small_rev, vec_affine, add_exact, mult_exact,
        wn_scale, one_slot_masked, group_pulses, closed_min_pulses,
        mode, bl, colbits, colsgn, colval, colidx, nact, rowbits, rowsgn, rowval, row_ptr, row_smp, seed,
        row_pulses, row_max,
    ):
        """Rows i0..i1 − 1; for each row, every sample in order (see the module docstring).

        Counts: a sample whose columns mostly fire (stochastic trains, "dense") is counted for every
        column in one vectorised popcount pass; other samples visit their firing columns only.
        Application, by device:

        * constant steps whose n-pulse sum is exact: per column the sums over samples of the mean
          steps and variances and the range of the mean path are accumulated (dense samples, one
          vectorised pass each) or just the up/down counts (other samples, no memory traffic); at
          the end of the row a column whose mean path stays MARGIN·σ_total inside its bounds gets
          w ← w + Σμ + σ_total·ξ (one Gaussian), any other column replays its samples one by one;
        * affine steps in closed form, dense samples: one vectorised pass per sample (additive
          noise: elements near a bound pulse by pulse);
        * pulse by pulse: the sample's coinciding columns sorted by count, pulse k acts on a prefix;
        * otherwise element by element (parameters gathered first, so cache misses overlap).
        """
        n_in = w.shape[1]
        m_samples = bl.shape[0]
        nw = colbits.shape[1]
        kp = pk.shape[2]
        track = wn_scale > 0.0
        agg = (not has_slope) and (force_closed or const_closed)
        vaff = has_slope and vec_affine
        seed_mean = _mix64(seed ^ _SEED_MEAN)
        touched = np.zeros(n_in, np.bool_)
        tlist = np.zeros(n_in, np.int64)
        cnt = np.zeros(n_in, np.int32)  # (32-bit: see _series_row)
        lst = np.zeros(n_in, np.int64)
        zbuf = np.zeros(n_in, np.float32)
        zcol = np.zeros(n_in, np.float32)  # one-slot masked pass: Gaussians by column
        n_ser = n_in if mult_exact else 1
        zser = np.zeros(2 * n_ser, np.float32)
        ser_prep = np.zeros((2, 7, n_ser), np.float32)
        rej = np.zeros((n_in + 7) // 8 * 8, np.bool_)  # closed form: elements to pulse one by one
        rej8 = rej.view(np.uint64)  # (eight flags per word: the compaction skips clear words)
        n_acc = n_in if agg else 1
        acc_m = np.zeros(n_acc, np.float64)
        acc_v = np.zeros(n_acc, np.float64)
        path_lo = np.zeros(n_acc, np.float64)
        path_hi = np.zeros(n_acc, np.float64)
        ups = np.zeros(n_acc, np.int64)
        downs = np.zeros(n_acc, np.int64)
        safe = np.zeros(n_acc, np.bool_)
        perm = np.zeros(n_in, np.int32)
        n_bins = max(64 * nw, group_pulses) + 2
        hist = np.zeros((_SORT_WAYS, n_bins), np.int32)
        start = np.zeros((_SORT_WAYS, n_bins), np.int32)
        n_ge = np.zeros(n_bins, np.int32)  # elements with count >= c
        ftype = w.dtype  # pulse arithmetic in the state's precision (float32 as the hardware models)
        buf_w = np.zeros(n_in, ftype)
        buf_a = np.zeros(n_in, ftype)
        buf_b = np.zeros(n_in, ftype)
        buf_r = np.zeros(n_in, ftype)
        buf_n = np.zeros(n_in, ftype)
        buf_lo = np.zeros(n_in, ftype)
        buf_hi = np.zeros(n_in, ftype)
        sel_a = np.zeros(n_in, ftype)
        sel_b = np.zeros(n_in, ftype)
        sel_n = np.zeros(n_in, ftype)
        sg_arr = np.empty(1, ftype)
        sg_arr[0] = sigma
        sg_f = sg_arr[0]  # σ in the state's precision
        buf_pk = np.zeros((n_in, kp), np.float64)
        # the sorted pulse-by-pulse path (dense and sparse samples; sparse ones of the series law)
        per_pulse = not agg and (not vaff or mult_exact)
        n_all = n_in * max(64 * nw, group_pulses) if (per_pulse or add_exact or mult_exact) else 1
        # groups of dense samples, pulse by pulse (_affine_group): pulses per column so far and
        # direction streams; the down direction's parameters; 1, 0 and σ in the state's precision
        grp_ok = per_pulse or add_exact  # dense samples may go pulse by pulse in groups
        n_grp = n_in if grp_ok else 1
        gpos = np.zeros(n_grp, np.int32)
        gd = np.zeros((STREAM_WORDS, n_grp), np.uint32)
        buf_d = np.zeros((STREAM_WORDS, n_grp), np.uint32)
        buf_ad = np.zeros(n_grp, ftype)
        buf_bd = np.zeros(n_grp, ftype)
        buf_nd = np.zeros(n_grp, ftype)
        onez = np.zeros(3, ftype)
        onez[0] = 1.0
        onez[2] = sigma
        sort_ws = (hist, start, n_ge, perm)
        grp_bufs = (buf_w, buf_lo, buf_hi, buf_a, buf_ad, buf_b, buf_bd, buf_n, buf_nd, buf_r)
        zall = np.zeros(n_all, np.float32)
        # one-slot trains (module docstring): which samples take a one-slot pass; per masked sample,
        # which columns fire (their signs where they do, 0 elsewhere: one byte per column, all the
        # masked pass reads of the trains); whether any sample takes the column-list pass, which
        # visits scattered elements through the packed parameters (then the next row's lines are
        # requested ahead, so that its misses overlap this row's work); the longest Gaussian block a
        # row can need
        one_slot = mode == _STOCHASTIC and per_pulse and has_slope and (mult or n_is_a)
        one_smp = np.zeros(m_samples, np.bool_)
        ahead = False
        n_one = 0
        n_masked = 0
        if one_slot:
            for n in range(m_samples):
                one_smp[n] = bl[n] == 1 and not _is_dense(mode, 1, nact[n], n_in, mult_exact)
                if one_smp[n]:
                    n_one += nact[n]
                    ahead = ahead or one_slot_masked * nact[n] < n_in
                    n_masked += one_slot_masked * nact[n] >= n_in
        fire = np.zeros((m_samples if n_masked > 0 else 1, n_in), np.int8)
        if n_masked > 0:
            for n in range(m_samples):
                if one_smp[n] and one_slot_masked * nact[n] >= n_in:
                    for j in range(n_in):
                        fire[n, j] = colsgn[n, j] if colbits[n, 0, j] != np.uint64(0) else np.int8(0)
        zone = np.zeros(n_one if sigma > 0.0 else 0, np.float32)
        for i in range(i0, i1):
            if ahead and i + 1 < i1:
                _prefetch_row(pk, i + 1)
                _prefetch_row(w, i + 1)
            base = _mix64(seed ^ _SEED_NOISE ^ (np.uint64(i) * _GOLDEN))
            slow = _mix64(base ^ _SLOW)
            ctr = 0
            pulses = 0
            cmax = 0
            row_dense = False
            row_small_x = -1
            row_prep = False
            n_t = 0
            g_max = 0  # most pulses of a column in the open group (0: none)
            row_sum = 0  # pulses and elements of the row's dense samples so far
            row_elems = 0
            z_one = 0  # the row's one-slot Gaussians: one block, drawn here (long vectors)
            if one_slot and sigma > 0.0:
                n_z = 0
                for idx in range(row_ptr[i], row_ptr[i + 1]):
                    n = row_smp[idx]
                    n_z += nact[n] if one_smp[n] else 0
                if n_z > 0:
                    row_normals(zone[:n_z], base + np.uint64(ctr) * _GOLDEN)
                    ctr += n_z
            for idx in range(row_ptr[i], row_ptr[i + 1]):
                n = row_smp[idx]
                b = bl[n]
                rv = rowval[n, i]
                rs = rowsgn[n, i]
                na = nact[n]
                dense = _is_dense(mode, b, na, n_in, mult_exact)
                ser = dense and mult_exact  # this sample in the series law (else pulse by pulse)
                in_group = grp_ok and dense and not ser  # may join the group of dense samples
                if g_max > 0 and not in_group:  # any other sample: the group is applied first
                    g_pul, ctr = _affine_group(i, g_max, gpos, gd, w, a_up, a_dn, b_up, b_dn, n_up, n_dn, ref, w_min, w_max,
                                               n_is_a, has_slope, has_ref, mult, sigma, onez, sort_ws, buf_d, grp_bufs,
                                               zall, base, ctr, touched)
                    pulses += g_pul
                    g_max = 0
                # -- one-slot trains, pulse by pulse: every firing column of a firing row coincides
                #    once, so the sample is one masked pass over the row or, where few columns fire,
                #    one pass over its column list (parameters from the packed copy, one cache line
                #    per element; the direction picks the field, no branch) ---------------------------
                if one_smp[n]:
                    if one_slot_masked * na >= n_in:  # enough columns fire: a masked pass over the row
                        if sigma > 0.0:
                            for k in range(na):  # the k-th firing column's Gaussian at its column
                                # (unsigned indices: no wraparound test for a negative index)
                                zcol[np.uint64(colidx[n, k])] = zone[np.uint64(z_one + k)]
                        if has_ref and mult:  # (literal flags: a copy of the pass each)
                            _one_pulse_row(i, n, rs, fire, w, a_up, a_dn, b_up, b_dn, ref, w_min, w_max, zcol,
                                           True, True, sigma)
                        elif has_ref:
                            _one_pulse_row(i, n, rs, fire, w, a_up, a_dn, b_up, b_dn, ref, w_min, w_max, zcol,
                                           True, False, sigma)
                        elif mult:
                            _one_pulse_row(i, n, rs, fire, w, a_up, a_dn, b_up, b_dn, ref, w_min, w_max, zcol,
                                           False, True, sigma)
                        else:
                            _one_pulse_row(i, n, rs, fire, w, a_up, a_dn, b_up, b_dn, ref, w_min, w_max, zcol,
                                           False, False, sigma)
                        if track:
                            row_dense = True  # (the end of the row scans every column's mark)
                            for j in range(n_in):
                                touched[j] = touched[j] | (fire[n, j] != 0)
                    else:
                        for k in range(na):
                            j = colidx[n, k]
                            dn = 0 if rs != colsgn[n, j] else 1  # 0: up
                            sg = 1.0 - 2.0 * dn
                            av = pk[i, j, dn]
                            wv = w[i, j]
                            mstep = sg * (av + pk[i, j, 4 + dn] * (wv + (pk[i, j, 6] if has_ref else 0.0)))
                            std = sigma * abs(mstep if mult else av)
                            zt = zone[z_one + k] if sigma > 0.0 else 0.0
                            w[i, j] = min(max(wv + mstep + std * zt, pk[i, j, 2]), pk[i, j, 3])
                            if track and not touched[j]:
                                touched[j] = True
                                tlist[n_t] = j
                                n_t += 1
                    z_one += na if sigma > 0.0 else 0
                    pulses += na
                    cmax = max(cmax, 1 if na > 0 else 0)
                    continue
                # -- counts ------------------------------------------------------------------
                if dense:
                    row_dense = True
                    rb = rowbits[n, 0, i]
                    for j in range(n_in):
                        cnt[j] = _popcount(rb & colbits[n, 0, j])
                    for wd in range(1, nw):
                        rb = rowbits[n, wd, i]
                        for j in range(n_in):
                            cnt[j] += _popcount(rb & colbits[n, wd, j])
                    n_list = n_in
                else:
                    n_list = 0
                    for k in range(na):
                        j = colidx[n, k]
                        if mode == _STOCHASTIC:  # written out: a helper taking arrays costs refcounting
                            c = 0
                            for wd in range(nw):
                                c += int(_popcount(rowbits[n, wd, i] & colbits[n, wd, j]))
                        else:
                            mu = float(b) * rv * colval[n, j]
                            if mode == _IMPLICIT:
                                c = int(np.rint(mu))
                            else:
                                fl = math.floor(mu)
                                key = np.uint64((i * m_samples + n) * n_in + j)
                                c = int(fl) + (1 if _unit53(_mix64(seed_mean + key * _GOLDEN)) < mu - fl else 0)
                        if c > 0:
                            lst[n_list] = j
                            cnt[n_list] = c
                            n_list += 1
                            if not touched[j]:
                                touched[j] = True
                                tlist[n_t] = j
                                n_t += 1
                # -- pulse by pulse, dense: into the group (its pulses per column within
                #    group_pulses, counts within one 32-bit direction word), applying it first if full.
                #    Additive noise (closed form exact away from the bounds) goes pulse by pulse too
                #    while the row's elements have had few pulses on average (at most
                #    CLOSED_MIN_PULSES): a pulse costs less than the closed form per element. (The
                #    row's running average, not the sample's: switching at every sample would end
                #    the groups, and each group costs a sort and a gather.)
                if in_group:
                    c_max, g_new, c_sum = _group_fit(cnt, gpos)
                    row_sum += c_sum
                    row_elems += n_in
                    pulsewise = per_pulse or row_sum <= closed_min_pulses * row_elems
                    if g_max > 0 and (not pulsewise or c_max > 32 or g_new > group_pulses):
                        g_pul, ctr = _affine_group(i, g_max, gpos, gd, w, a_up, a_dn, b_up, b_dn, n_up, n_dn, ref, w_min, w_max,
                                               n_is_a, has_slope, has_ref, mult, sigma, onez, sort_ws, buf_d, grp_bufs,
                                               zall, base, ctr, touched)
                        pulses += g_pul
                        g_max = 0
                        g_new = c_max
                    if pulsewise and c_max <= 32:
                        if c_max > 0:
                            _stream_add(n, rs, cnt, colsgn, gpos, gd)
                            g_max = g_new
                            cmax = max(cmax, c_max)
                        continue
                # -- constant steps: accumulate -----------------------------------------------
                if agg:
                    if dense:
                        for j in range(n_in):
                            c = cnt[j]
                            up = rs != colsgn[n, j]
                            av = a_up[i, j] if up else a_dn[i, j]
                            nv = av if n_is_a else (n_up[i, j] if up else n_dn[i, j])
                            sc = abs(av) if mult else abs(nv)
                            cf = float(c)
                            mu = cf * av
                            mm = acc_m[j] + (mu if up else -mu)
                            acc_m[j] = mm
                            acc_v[j] += cf * sc * sc
                            path_lo[j] = min(path_lo[j], mm)
                            path_hi[j] = max(path_hi[j], mm)
                            pulses += c
                            cmax = max(cmax, c)
                            touched[j] = touched[j] | (c > 0)
                    else:
                        for t in range(n_list):
                            j = lst[t]
                            c = cnt[t]
                            if rs != colsgn[n, j]:
                                ups[j] += c
                            else:
                                downs[j] += c
                            pulses += c
                            cmax = max(cmax, c)
                    continue
                # -- affine steps, closed form, whole row at once -------------------------------
                if ser:
                    if not row_prep:
                        _series_prep(i, a_up, a_dn, b_up, b_dn, sigma, ser_prep)
                        row_prep = True
                    row_normals(zser, base + np.uint64(ctr) * _GOLDEN)
                    ctr += 2 * n_in
                    if has_ref:  # (a literal flag in each copy of the loop: a runtime one leaves a gather)
                        _series_row(i, n, rs, cnt, colsgn, w, ref, w_min, w_max, zser, rej, True, sigma, ser_prep)
                    else:
                        _series_row(i, n, rs, cnt, colsgn, w, ref, w_min, w_max, zser, rej, False, sigma, ser_prep)
                    for j in range(n_in):  # (after the series pass: see _series_row)
                        c = cnt[j]
                        pulses += c
                        cmax = max(cmax, c)
                    any_bad = np.uint64(0)
                    for q in range(rej8.shape[0]):
                        any_bad |= rej8[q]
                    n_unsafe = 1 if any_bad != np.uint64(0) else 0
                    if track:  # (touched marks serve the write noise only)
                        for j in range(n_in):
                            touched[j] = touched[j] | (cnt[j] > 0)
                elif vaff and dense and not mult_exact:
                    if row_small_x < 0:  # once per row: is x = σ²slope²/(1+slope)² <= 1e-6 everywhere?
                        bmax = 0.0
                        for j in range(n_in):
                            bmax = max(bmax, max(abs(b_up[i, j]), abs(b_dn[i, j])))
                        row_small_x = 1 if (bmax < 0.5 and (sigma * bmax / (1.0 - bmax)) ** 2 <= 1e-6) else 0
                    if sigma > 0.0:
                        row_normals(zbuf, base + np.uint64(ctr) * _GOLDEN)
                        ctr += n_in
                    # copies of the loop: the flags must be constants in each (additive noise does not
                    # use the multiplicative variance and its divisions and power chain)
                    if not mult:
                        _closed_row(i, n, rs, cnt, colsgn, w, a_up, a_dn, b_up, b_dn, n_up, n_dn, ref, w_min, w_max,
                                    zbuf, rej, n_is_a, has_ref, False, sigma, add_exact, True)
                    elif row_small_x == 1:
                        _closed_row(i, n, rs, cnt, colsgn, w, a_up, a_dn, b_up, b_dn, n_up, n_dn, ref, w_min, w_max,
                                    zbuf, rej, n_is_a, has_ref, True, sigma, add_exact, True)
                    else:
                        _closed_row(i, n, rs, cnt, colsgn, w, a_up, a_dn, b_up, b_dn, n_up, n_dn, ref, w_min, w_max,
                                    zbuf, rej, n_is_a, has_ref, True, sigma, add_exact, False)
                if vaff and dense and not mult_exact:
                    n_unsafe = 0
                    for j in range(n_in):
                        c = cnt[j]
                        pulses += c
                        cmax = max(cmax, c)
                        touched[j] = touched[j] | (c > 0)
                        n_unsafe += rej[j] if add_exact else 0
                if (vaff and dense and not mult_exact) or ser:
                    if n_unsafe == 0:
                        continue
                    # near a bound (or outside the series' tolerance): pulse by pulse, element by
                    # element, with the Gaussians drawn in one go
                    n_pul = _marked(rej, rej8, n_in, lst)
                    ctr = _pulse_listed(i, n, rs, colsgn, lst, n_pul, cnt, w, a_up, a_dn, b_up, b_dn, n_up, n_dn, ref,
                                        w_min, w_max, n_is_a, has_slope, has_ref, mult, sigma, zall, base, ctr)
                    continue
                # -- pulse by pulse, one row and sample: the candidate columns (all of them for a
                #    dense sample, column lst[t] at position t otherwise) sorted by count cnt[t]
                #    (descending) so that pulse k acts on a prefix: one vectorised pass per pulse
                #    index, in the state's precision, with all Gaussians drawn in one go. The
                #    direction-dependent parameters are selected first in one branch-free pass; the
                #    counting sort runs _SORT_WAYS interleaved sub-histograms, so that equal counts
                #    do not chain through one memory cell. -----------------------------------------
                if dense or (per_pulse and b <= 64 * nw):  # (counts beyond the histogram: element by element)
                    direct = dense
                    n_cols = n_in if dense else n_list
                    maxc = 0
                    for t in range(n_cols):
                        maxc = max(maxc, cnt[t])
                    n_live = _sort_by_count(cnt, n_cols, maxc, not direct, hist, start, n_ge, perm)
                    for t in range(n_cols):  # (blended: a select of two loads is a mispredicted branch or a gather)
                        j = t if direct else lst[t]
                        fu = 1.0 if rs != colsgn[n, j] else 0.0
                        fd = 1.0 - fu
                        sel_a[t] = fu * a_up[i, j] - fd * a_dn[i, j]
                        if has_slope:
                            sel_b[t] = fu * b_up[i, j] - fd * b_dn[i, j]
                        if not mult:
                            nu = a_up[i, j] if n_is_a else n_up[i, j]
                            nd = a_dn[i, j] if n_is_a else n_dn[i, j]
                            sel_n[t] = sigma * abs(fu * nu + fd * nd)
                    for t in range(n_live):
                        tt = perm[t]
                        j = tt if direct else lst[tt]
                        buf_w[t] = w[i, j]
                        buf_a[t] = sel_a[tt]
                        buf_lo[t] = w_min[i, j]
                        buf_hi[t] = w_max[i, j]
                        buf_b[t] = sel_b[tt] if has_slope else 0.0
                    if has_ref:
                        for t in range(n_live):
                            tt = perm[t]
                            buf_r[t] = ref[i, tt if direct else lst[tt]]
                    if not mult:
                        for t in range(n_live):
                            buf_n[t] = sel_n[perm[t]]
                    if direct:
                        for t in range(n_live):
                            touched[perm[t]] = True
                    n_pulses = _total_pulses(n_ge, maxc)
                    if sigma > 0.0:
                        row_normals(zall[:n_pulses], base + np.uint64(ctr) * _GOLDEN)
                        ctr += n_pulses
                    off = 0
                    for k in range(maxc):
                        n_k = n_ge[k + 1]
                        zk = zall[off:]  # a view per pass: zall[off + t] would compile to a masked gather
                        if mult and not has_ref:  # the common case, with two loads fewer per pulse
                            for t in range(n_k):
                                wv = buf_w[t]
                                mstep = buf_a[t] + buf_b[t] * wv
                                buf_w[t] = min(max(wv + mstep + sg_f * abs(mstep) * zk[t], buf_lo[t]), buf_hi[t])
                        else:
                            for t in range(n_k):
                                wv = buf_w[t]
                                mstep = buf_a[t] + buf_b[t] * (wv + buf_r[t])
                                std = sg_f * abs(mstep) if mult else buf_n[t]
                                buf_w[t] = min(max(wv + mstep + std * zk[t], buf_lo[t]), buf_hi[t])
                        off += n_k
                    for t in range(n_live):
                        tt = perm[t]
                        w[i, tt if direct else lst[tt]] = buf_w[t]
                    pulses += n_pulses
                    cmax = max(cmax, maxc)
                    continue
                # -- element by element: gather first (independent loads overlap their misses) ----
                for t in range(n_list):
                    j = lst[t]
                    buf_w[t] = w[i, j]
                    for k in range(kp):
                        buf_pk[t, k] = pk[i, j, k]
                for t in range(n_list):
                    c = cnt[t]
                    j = lst[t]
                    pulses += c
                    cmax = max(cmax, c)
                    up = rs != colsgn[n, j]
                    sg = 1.0 if up else -1.0
                    av = buf_pk[t, 0 if up else 1]
                    nv = av if n_is_a else (n_up[i, j] if up else n_dn[i, j])
                    lo = buf_pk[t, 2]
                    hi = buf_pk[t, 3]
                    wv = buf_w[t]
                    if not has_slope:  # constant step, pulse by pulse (its closed form is not exact)
                        std1 = sigma * (abs(av) if mult else abs(nv))
                        for _ in range(c):
                            z, slow = gauss_scalar(base, ctr, slow)
                            ctr += 1
                            wv = min(max(wv + sg * av + std1 * z, lo), hi)
                        buf_w[t] = wv
                        continue
                    bv = buf_pk[t, 4 if up else 5]
                    rr = buf_pk[t, 6] if has_ref else 0.0
                    slope = sg * bv
                    if force_closed or (sigma == 0.0 and slope >= -1.0) or (slope == 0.0 and small_rev):
                        d0 = sg * (av + bv * (wv + rr))
                        geom, var = _closed(c, slope, sigma, mult, nv, d0, False)
                        new = wv + d0 * geom
                        if var > 0.0:
                            z, slow = gauss_scalar(base, ctr, slow)
                            ctr += 1
                            new += math.sqrt(var) * z
                        buf_w[t] = min(max(new, lo), hi)
                    else:
                        add_std = sigma * abs(nv)
                        for _ in range(c):
                            mstep = sg * (av + bv * (wv + rr))
                            std = sigma * abs(mstep) if mult else add_std
                            z, slow = gauss_scalar(base, ctr, slow)
                            ctr += 1
                            wv = min(max(wv + mstep + std * z, lo), hi)
                        buf_w[t] = wv
                for t in range(n_list):
                    w[i, lst[t]] = buf_w[t]
            if g_max > 0:  # -- end of row: the open group ----------------------------------------
                g_pul, ctr = _affine_group(i, g_max, gpos, gd, w, a_up, a_dn, b_up, b_dn, n_up, n_dn, ref, w_min, w_max,
                                               n_is_a, has_slope, has_ref, mult, sigma, onez, sort_ws, buf_d, grp_bufs,
                                               zall, base, ctr, touched)
                pulses += g_pul
            # -- end of row: constant steps get their accumulated update ------------------------
            n_scan = n_in if row_dense else n_t
            if agg and n_scan > 0:
                if row_dense:  # every column, vectorised; columns it cannot settle are marked unsafe
                    if sigma > 0.0:
                        row_normals(zbuf, base + np.uint64(ctr) * _GOLDEN)
                        ctr += n_in
                    for j in range(n_in):
                        au = a_up[i, j]
                        ad = a_dn[i, j]
                        su = abs(au) if (mult or n_is_a) else abs(n_up[i, j])
                        sd_ = abs(ad) if (mult or n_is_a) else abs(n_dn[i, j])
                        u = float(ups[j])
                        dn = float(downs[j])
                        mean = acc_m[j] + au * u - ad * dn
                        sd = sigma * math.sqrt(acc_v[j] + su * su * u + sd_ * sd_ * dn)
                        lo = w_min[i, j]
                        hi = w_max[i, j]
                        w0 = w[i, j]
                        ok = (w0 + path_lo[j] - ad * dn - MARGIN * sd >= lo) and (w0 + path_hi[j] + au * u + MARGIN * sd <= hi)
                        safe[j] = ok
                        new = min(max(w0 + mean + sd * zbuf[j], lo), hi)
                        w[i, j] = new if ok else w0
                else:
                    for t in range(n_t):  # gather first (independent loads overlap their misses)
                        j = tlist[t]
                        buf_w[t] = w[i, j]
                        for k in range(kp):
                            buf_pk[t, k] = pk[i, j, k]
                    for t in range(n_t):
                        j = tlist[t]
                        au = buf_pk[t, 0]
                        ad = buf_pk[t, 1]
                        su = abs(au) if (mult or n_is_a) else abs(n_up[i, j])
                        sd_ = abs(ad) if (mult or n_is_a) else abs(n_dn[i, j])
                        u = float(ups[j])
                        dn = float(downs[j])
                        mean = acc_m[j] + au * u - ad * dn
                        sd = sigma * math.sqrt(acc_v[j] + su * su * u + sd_ * sd_ * dn)
                        lo = buf_pk[t, 2]
                        hi = buf_pk[t, 3]
                        w0 = buf_w[t]
                        ok = (w0 + path_lo[j] - ad * dn - MARGIN * sd >= lo) and (w0 + path_hi[j] + au * u + MARGIN * sd <= hi)
                        safe[j] = ok
                        if ok:
                            new = w0 + mean
                            if sd > 0.0:
                                z, slow = gauss_scalar(base, ctr, slow)
                                ctr += 1
                                new += sd * z
                            w[i, j] = min(max(new, lo), hi)
                for t in range(n_scan):
                    j = t if row_dense else tlist[t]
                    acc_m[j] = 0.0
                    acc_v[j] = 0.0
                    path_lo[j] = 0.0
                    path_hi[j] = 0.0
                    ups[j] = 0
                    downs[j] = 0
                    if safe[j]:
                        continue
                    # near a bound: replay this column's samples one by one (the exact per-sample law)
                    wv = float(w[i, j])
                    lo = pk[i, j, 2]
                    hi = pk[i, j, 3]
                    for idx in range(row_ptr[i], row_ptr[i + 1]):
                        n = row_smp[idx]
                        b = bl[n]
                        rv = rowval[n, i]
                        c = _count(mode, i, n, j, b, rv, rowbits, colbits, colval, seed_mean, m_samples, n_in)
                        if c == 0:
                            continue
                        up = rowsgn[n, i] != colsgn[n, j]
                        av = pk[i, j, 0 if up else 1]
                        nv = av if n_is_a else (n_up[i, j] if up else n_dn[i, j])
                        new = wv + (c * av if up else -c * av)
                        if sigma > 0.0:
                            z, slow = gauss_scalar(base, ctr, slow)
                            ctr += 1
                            new += sigma * (abs(av) if mult else abs(nv)) * math.sqrt(c) * z
                        wv = min(max(new, lo), hi)
                    w[i, j] = wv
            # -- write noise of every touched element, then clear the marks ----------------------
            ctr, slow = _redraw_marked(i, n_scan, row_dense, tlist, touched, track, wn, wn_scale, base, ctr, slow)
            row_pulses[i] = pulses
            row_max[i] = cmax


    @njit(inline="always", cache=True, error_model="numpy")
    def _prefetch_listed(i, cols, counts_row, w, a_up, a_dn, b_up, b_dn, n_up, n_dn, ref, w_min, w_max, n_is_a,
                         has_slope, has_ref):
        """Prefetch the lines of every array that pulsing the elements (i, cols[m]) with
        counts_row[m] != 0 reads. A column transfer visits one element per row in each of its
        columns: without the hints each is a miss in every parameter array, one after another."""
        for m in range(cols.shape[0]):
            if counts_row[m] != 0:
                off = (i * w.shape[1] + cols[m]) * w.itemsize
                _prefetch(w, off)
                _prefetch(a_up, off)
                _prefetch(a_dn, off)
                _prefetch(w_min, off)
                _prefetch(w_max, off)
                if has_slope:
                    _prefetch(b_up, off)
                    _prefetch(b_dn, off)
                if has_ref:
                    _prefetch(ref, off)
                if not n_is_a:
                    _prefetch(n_up, off)
                    _prefetch(n_dn, off)

    @njit(cache=True, error_model="numpy", nogil=True, fastmath={"contract"})
    def _counts_block(
        t0, t1, rows, cols, counts, w, a_up, b_up, a_dn, b_dn, n_up, n_dn, ref, w_min, w_max, wn,
        n_is_a, has_slope, has_ref, mult, sigma, mult_exact, const_exact, wn_scale, k_max, seed, row_pulses, row_max,
    ):
        """Given counts on rows rows[t0..t1 − 1] (row t of ``counts``), on all columns, or on the
        columns ``cols`` only (column m of ``counts``; empty: all): |count| pulses in direction
        sign(count) per element, each element on its own (as ``pulse_n``). Whole rows of affine steps
        with multiplicative noise: the series law in one vectorised pass; constant steps whose n-pulse
        sum is exact (``const_exact``): w + d·c·a + σ·|a or n|·√c·ξ where the mean path keeps
        MARGIN standard deviations inside the bounds (module docstring); unsafe elements, and
        everything else, pulse by pulse, with the row's Gaussians drawn in one go. Then the write
        noise of every pulsed element is redrawn."""
        n_in = w.shape[1]
        some = cols.shape[0] > 0
        track = wn_scale > 0.0
        cnt = np.zeros(n_in, np.int32)  # (32-bit: see _series_row)
        updir = np.zeros((1, n_in), np.int8)  # 1: up (read as rs = 0 != updir)
        n_ser = n_in if ((mult_exact or const_exact) and not some) else 1
        zser = np.zeros(2 * n_ser, np.float32)
        prep = np.zeros((2, 7, n_ser), np.float32)
        rej = np.zeros((n_in + 7) // 8 * 8, np.bool_)
        rej8 = rej.view(np.uint64)
        lst = np.zeros(n_in, np.int64)
        zall = np.zeros(n_in * max(k_max, 1), np.float32)  # every pulse of a row (k_max: the largest |count|)
        for t in range(t0, t1):
            if some and t + _AHEAD_ROWS < t1:  # given columns: their scattered elements, rows ahead
                _prefetch_listed(rows[t + _AHEAD_ROWS], cols, counts[t + _AHEAD_ROWS], w, a_up, a_dn, b_up, b_dn,
                                 n_up, n_dn, ref, w_min, w_max, n_is_a, has_slope, has_ref)
            i = rows[t]
            base = _mix64(seed ^ _SEED_NOISE ^ (np.uint64(i) * _GOLDEN))
            slow = _mix64(base ^ _SLOW)
            ctr = 0
            pulses = 0
            cmax = 0
            n_pul = 0
            for m in range(cols.shape[0] if some else n_in):  # position m of the row of counts
                j = cols[m] if some else m
                c = counts[t, m]
                cnt[j] = abs(c)
                updir[0, j] = 1 if c > 0 else 0
                pulses += abs(c)
                cmax = max(cmax, abs(c))
                lst[n_pul] = j  # the given columns are pulsed one by one (whole rows: marked below)
                n_pul += 1 if (some and c != 0) else 0
            row_pulses[t] = pulses
            row_max[t] = cmax
            if pulses == 0:
                continue
            if not some:
                if mult_exact:
                    _series_prep(i, a_up, a_dn, b_up, b_dn, sigma, prep)
                    row_normals(zser, base + np.uint64(ctr) * _GOLDEN)
                    ctr += 2 * n_in
                    if has_ref:
                        _series_row(i, 0, np.int8(0), cnt, updir, w, ref, w_min, w_max, zser, rej, True, sigma, prep)
                    else:
                        _series_row(i, 0, np.int8(0), cnt, updir, w, ref, w_min, w_max, zser, rej, False, sigma, prep)
                elif const_exact:
                    if sigma > 0.0:
                        row_normals(zser[:n_in], base + np.uint64(ctr) * _GOLDEN)
                        ctr += n_in
                    for j in range(n_in):
                        cf = float(cnt[j])
                        up = updir[0, j] != 0
                        av = a_up[i, j] if up else a_dn[i, j]
                        sc = abs(av) if (mult or n_is_a) else abs(n_up[i, j] if up else n_dn[i, j])
                        sd = sigma * sc * math.sqrt(cf)
                        mean = cf * av if up else -cf * av
                        w0 = w[i, j]
                        lo = w_min[i, j]
                        hi = w_max[i, j]
                        ok = (w0 + min(mean, 0.0) - MARGIN * sd >= lo) & (w0 + max(mean, 0.0) + MARGIN * sd <= hi)
                        live = cf > 0.0
                        keep = live & ok
                        z = zser[j] if sigma > 0.0 else 0.0
                        w[i, j] = min(max(w0 + mean + sd * z, lo), hi) if keep else w0
                        rej[j] = live != keep
                else:
                    for j in range(n_in):
                        rej[j] = cnt[j] > 0
                n_pul = _marked(rej, rej8, n_in, lst)  # pulse by pulse: the marked elements
            ctr = _pulse_listed(i, 0, np.int8(0), updir, lst, n_pul, cnt, w, a_up, a_dn, b_up, b_dn, n_up, n_dn, ref,
                                w_min, w_max, n_is_a, has_slope, has_ref, mult, sigma, zall, base, ctr)
            if track:
                if some:
                    for m in range(n_pul):
                        z, slow = gauss_scalar(base, ctr, slow)
                        ctr += 1
                        wn[i, lst[m]] = wn_scale * z
                else:
                    for j in range(n_in):
                        if cnt[j] > 0:
                            z, slow = gauss_scalar(base, ctr, slow)
                            ctr += 1
                            wn[i, j] = wn_scale * z

    @njit(cache=True, error_model="numpy", nogil=True)
    def _count_block(i0, i1, mode, bl, colbits, colsgn, colval, colidx, nact, rowbits, rowsgn, rowval,
                     row_ptr, row_smp, seed, up, down):
        """Rows i0..i1 − 1: per element the coincidences of the call's samples, summed separately for
        the samples that raise w (up) and those that lower it (down). No device, no order needed.
        Dense samples of stochastic trains: one branch-free pass over the row (vectorised; the
        directions are random, a branch on them would be mispredicted half the time)."""
        m_samples = bl.shape[0]
        n_in = up.shape[1]
        nw = colbits.shape[1]
        seed_mean = _mix64(seed ^ _SEED_MEAN)
        for i in range(i0, i1):
            for idx in range(row_ptr[i], row_ptr[i + 1]):
                n = row_smp[idx]
                b = bl[n]
                rv = rowval[n, i]
                rs = rowsgn[n, i]
                if mode == _STOCHASTIC and 4 * nact[n] >= n_in:
                    for wd in range(nw):
                        rb = rowbits[n, wd, i]
                        for j in range(n_in):
                            c = np.int32(_popcount(rb & colbits[n, wd, j]))
                            u = np.int32(1) if rs != colsgn[n, j] else np.int32(0)
                            up[i, j] += u * c
                            down[i, j] += (np.int32(1) - u) * c
                    continue
                for k in range(nact[n]):
                    j = colidx[n, k]
                    c = _count(mode, i, n, j, b, rv, rowbits, colbits, colval, seed_mean, m_samples, n_in)
                    if rs != colsgn[n, j]:
                        up[i, j] += c
                    else:
                        down[i, j] += c

    drop_stale_cache(_count_block)  # before any kernel of this module runs (see analogkit._jit_cache)


# ---------------------------------------------------------------------------------------------
# Which devices the kernel covers, and how their state maps onto its parameters
# ---------------------------------------------------------------------------------------------
@dataclass
class KernelParams:
    """A device state in the kernel's form: per element and direction d = ±1,
    mean step m = d·(a_d + b_d·(w + r)), c2c std σ·|m| (``mult``) or σ·|n_d| (additive); bounds w_min, w_max.

    ``b``/``r`` are None without slope/reference; ``const_closed`` (no slope only) says whether
    the n-pulse sum is exact for this device (as its ``pulse_n(method="auto")`` decides).
    """

    a_up: torch.Tensor
    a_dn: torch.Tensor
    n_up: torch.Tensor
    n_dn: torch.Tensor
    sigma: float
    mult: bool
    b_up: torch.Tensor | None = None
    b_dn: torch.Tensor | None = None
    ref: torch.Tensor | None = None
    const_closed: bool = True


Adapter = Callable[[Device, DeviceState], KernelParams]
#: Device classes the kernel covers, with the function mapping their state onto :class:`KernelParams`.
KERNEL_DEVICES: dict[type, Adapter] = {}
_ADAPTER_OF: dict[type, Adapter | None] = {}  # resolved per device class (cleared on registration)
# Methods whose semantics an adapter encodes: a subclass that overrides one of them is not covered.
_PHYSICS = ("_affine_dir", "_mean_std_dir", "_mult_noise", "_pulse_n_closed", "_closed_form_exact",
            "pulse_n", "pulse", "_step_inplace", "_pulse_n_loop", "_refresh_write_noise")


def register_kernel_device(cls: type) -> Callable[[Adapter], Adapter]:
    """Decorator: register how the kernel reads states of ``cls`` (and subclasses not overriding physics)."""
    def deco(fn: Adapter) -> Adapter:
        KERNEL_DEVICES[cls] = fn
        _ADAPTER_OF.clear()
        return fn

    return deco


def _small_reversal(sigma: float) -> bool:
    return sigma == 0 or _normal_cdf(-1.0 / sigma) < REVERSAL_PROBABILITY_LIMIT


@register_kernel_device(IdealDevice)
def _ideal(device: Device, state: DeviceState) -> KernelParams:
    return KernelParams(a_up=state.dw_up, a_dn=state.dw_down, n_up=state.dw_up, n_dn=state.dw_down, sigma=0.0, mult=True)


@register_kernel_device(ConstantStepDevice)
def _constant(device: Device, state: DeviceState) -> KernelParams:
    sigma = float(device.dw_min_std)
    return KernelParams(
        a_up=state.dw_up, a_dn=state.dw_down, n_up=state.dw_up, n_dn=state.dw_down, sigma=sigma, mult=True,
        const_closed=bool(device._closed_form_exact(state)),
    )


@register_kernel_device(_LinearFamily)
def _linear(device: Device, state: DeviceState) -> KernelParams:
    return KernelParams(
        a_up=state.dw_up, a_dn=state.dw_down, n_up=state.dw_up, n_dn=state.dw_down,
        b_up=state.slope_up, b_dn=state.slope_down, sigma=float(device.dw_min_std), mult=bool(device._mult_noise()),
    )


@register_kernel_device(SoftBoundsReferenceDevice)
def _soft_bounds_reference(device: Device, state: DeviceState) -> KernelParams:
    p = _linear(device, state)
    p.ref = state.reference
    return p


@register_kernel_device(AffineStepDevice)
def _generic_affine(device: Device, state: DeviceState) -> KernelParams:
    """Any other affine-step device, through its ``_affine_dir`` (allocates the step tensors)."""
    d_up, sl_up, add_up = device._affine_dir(state, True)
    d_dn, sl_dn, add_dn = device._affine_dir(state, False)
    shape = state.shape
    return KernelParams(
        a_up=d_up.expand(shape), a_dn=(-d_dn).expand(shape), b_up=sl_up.expand(shape), b_dn=(-sl_dn).expand(shape),
        n_up=add_up.expand(shape), n_dn=add_dn.expand(shape), sigma=float(device.dw_min_std), mult=bool(device._mult_noise()),
    )


def _adapter(device: Device) -> Adapter | None:
    cls = type(device)
    if cls in _ADAPTER_OF:
        return _ADAPTER_OF[cls]
    found = None
    for base in cls.__mro__:
        fn = KERNEL_DEVICES.get(base)
        if fn is None:
            continue
        # the adapter encodes base's physics: every physics method must still be base's own,
        # except that the generic affine adapter reads _affine_dir/_mult_noise through the device
        free = ("_affine_dir", "_mult_noise") if base is AffineStepDevice else ()
        same = all(getattr(cls, name, None) is getattr(base, name, None) for name in _PHYSICS if name not in free)
        found = fn if same else None
        break
    _ADAPTER_OF[cls] = found
    return found


def kernel_supported(device: Device, state: DeviceState) -> bool:
    """Whether the fused kernel covers this device and state (numba present, CPU, float32/64, 2-D)."""
    return (
        HAVE_NUMBA
        and state.w.device.type == "cpu"
        and state.w.dtype in (torch.float32, torch.float64)
        and state.w.dim() == 2
        and _adapter(device) is not None
    )


def kernel_params(device: Device, state: DeviceState) -> KernelParams:
    fn = _adapter(device)
    if fn is None:
        raise ValueError(f"{type(device).__name__}: the numba update kernel does not cover this device")
    return fn(device, state)


_DUMMY: dict[torch.dtype, np.ndarray] = {}


def _np(t: torch.Tensor | None, dtype: torch.dtype) -> np.ndarray:
    """Read-only numpy view (contiguous, state dtype); a 1×1 dummy for None."""
    if t is None:
        if dtype not in _DUMMY:
            _DUMMY[dtype] = np.zeros((1, 1), dtype=np.float32 if dtype == torch.float32 else np.float64)
        return _DUMMY[dtype]
    if t.dtype != dtype or not t.is_contiguous():
        t = t.to(dtype).contiguous()
    return t.detach().numpy()


def _inputs(t: torch.Tensor) -> np.ndarray:
    """x or d as a contiguous float32/float64 array (other dtypes go to float32)."""
    t = t.detach()
    if t.dtype not in (torch.float32, torch.float64):
        t = t.to(torch.float32)
    return t.contiguous().numpy()


_WORKSPACE = threading.local()


def _workspace(m: int, n_in: int, n_out: int, nw: int) -> dict[str, np.ndarray]:
    """Scratch arrays of one call, kept per thread and shape (every entry is written before it is read)."""
    cache = getattr(_WORKSPACE, "cache", None)
    if cache is None:
        cache = _WORKSPACE.cache = OrderedDict()
    key = (m, n_in, n_out, nw)
    ws = cache.get(key)
    if ws is None:
        ws = dict(
            bl=np.empty(m, np.int64), a_sc=np.empty(m, np.float64), b_sc=np.empty(m, np.float64),
            colbits=np.empty((m, nw, n_in), np.uint64), colsgn=np.empty((m, n_in), np.int8),
            colval=np.empty((m, n_in), np.float64), colidx=np.empty((m, n_in), np.int64), nact=np.empty(m, np.int64),
            rowbits=np.empty((m, nw, n_out), np.uint64), rowsgn=np.empty((m, n_out), np.int8),
            rowval=np.empty((m, n_out), np.float64), rowidx=np.empty((m, n_out), np.int64), nrow=np.empty(m, np.int64),
            row_ptr=np.empty(n_out + 1, np.int64), row_smp=np.empty(m * n_out, np.int64),
            row_pulses=np.empty(n_out, np.int64), row_max=np.empty(n_out, np.int64),
        )
        cache[key] = ws
        while len(cache) > 8:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return ws


_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0
_POOL_PID = 0


def _threads() -> int:
    """Threads for one call: PyTorch's intra-op setting (the same cores the rest of a step uses)."""
    return max(1, torch.get_num_threads())


def _split(fn: Callable, total: int, chunks: int, args: tuple) -> None:
    """Run fn(lo, hi, *args) over [0, total) in ``chunks`` ranges on ``_threads()`` threads.

    The kernels release the GIL; the calling thread works too and ranges are handed out from a
    shared counter, so a thread that the OS delays does not hold the others up. Plain Python
    threads instead of numba's own thread pool: no second OpenMP runtime next to PyTorch's, whose
    spinning threads made small parallel calls stall for milliseconds (measured), and no parallel
    variants to compile.
    """
    global _POOL, _POOL_SIZE, _POOL_PID
    threads = min(_threads(), chunks)
    if threads <= 1:
        fn(0, total, *args)
        return
    if _POOL is None or _POOL_SIZE < threads - 1 or _POOL_PID != os.getpid():  # (a forked child has no threads)
        _POOL = ThreadPoolExecutor(max_workers=threads - 1, thread_name_prefix="analogkit-update")
        _POOL_SIZE, _POOL_PID = threads - 1, os.getpid()
    bounds = [total * k // chunks for k in range(chunks + 1)]
    ticket = itertools.count()

    def work() -> None:
        while (k := next(ticket)) < chunks:
            fn(bounds[k], bounds[k + 1], *args)

    futures = [_POOL.submit(work) for _ in range(threads - 1)]
    work()
    for f in futures:
        f.result()


class _PackCache:
    """Per-element parameters packed side by side, (out, in, K): one cache line per element visit.

    A visit to a random element (the sparse regime: a few thousand scattered coincidences) costs a
    cache miss per array read; with the parameters interleaved it costs one (measured 2× faster on
    scattered visits). The d2d parameters do not change during training, so the packed copy is
    kept for as long as the tensor that owns the parameters' memory lives (a weak reference with a
    finaliser; no limit on the number of arrays, so every tile of a large model keeps its copy, at
    16 or 32 bytes per element), and rebuilt when any source tensor moved or changed: same data
    pointers, shapes, strides and versions (PyTorch bumps a tensor's version on every in-place
    change; views share their base's counter).
    """

    def __init__(self) -> None:
        # id(owner) -> (weak ref to owner, {data pointers: (key, packed array)})
        self.owners: dict[int, tuple[weakref.ref, dict[tuple, tuple[tuple, np.ndarray]]]] = {}
        self.lock = threading.Lock()

    def _drop(self, owner_id: int) -> None:
        with self.lock:
            self.owners.pop(owner_id, None)

    def get(self, tensors: list[torch.Tensor], dtype: torch.dtype, width: int) -> np.ndarray:
        """(…, width) array holding ``tensors`` in its first slots (zeros after them)."""
        bases = [t._base if t._base is not None else t for t in tensors]
        owner = bases[-1]
        where = (dtype, width) + tuple(t.data_ptr() for t in tensors)
        key = tuple((id(b), t.shape, t.stride(), t._version) for t, b in zip(tensors, bases))
        with self.lock:
            entry = self.owners.get(id(owner))
            if entry is not None and entry[0]() is owner:
                hit = entry[1].get(where)
                if hit is not None and hit[0] == key:
                    return hit[1]
        packed = torch.zeros(tuple(tensors[0].shape) + (width,), dtype=dtype)
        for k, t in enumerate(tensors):
            packed[..., k] = t.detach()
        arr = packed.numpy()
        with self.lock:
            entry = self.owners.get(id(owner))
            if entry is None or entry[0]() is not owner:
                entry = (weakref.ref(owner), {})
                self.owners[id(owner)] = entry
                weakref.finalize(owner, self._drop, id(owner))
            entry[1][where] = (key, arr)
        return arr


_PACKED = _PackCache()


def _packed(params: KernelParams, state: DeviceState, dtype: torch.dtype) -> np.ndarray:
    """Per element [a_up, a_dn, w_min, w_max] (K = 4), or with slopes [.., b_up, b_dn, ref, 0] (K = 8)."""
    parts = [params.a_up, params.a_dn, state.w_min, state.w_max]
    if params.b_up is None:
        return _PACKED.get(parts, dtype, 4)
    parts += [params.b_up, params.b_dn]
    if params.ref is not None:
        parts.append(params.ref)
    return _PACKED.get(parts, dtype, 8)


def _seed(generator: torch.Generator) -> int:
    return int(torch.randint(0, 2**63 - 1, (1,), generator=generator, device=generator.device).item())


@dataclass
class _Trains:
    """One call's plan and pulse trains, drawn into the calling thread's workspace ``ws`` (keys as
    :func:`_workspace`), with the per-row sample lists built when anything coincides."""

    mode: int
    nw: int
    seed: np.uint64
    ws: dict[str, np.ndarray]
    work: int  # Σ_n firing columns × firing rows: 0 if no element coincides


def abs_max_rows(a: np.ndarray) -> np.ndarray:
    """max_j |a[n, j]| per sample as float64, NaN where a sample holds one (:func:`_abs_max_bits`:
    12 µs for 512×512, where a float max that lets NaN through took 0.3 ms)."""
    if a.shape[1] == 0:
        return np.zeros(a.shape[0])
    bits = a.view(np.uint32 if a.dtype == np.float32 else np.uint64)
    out = np.empty(a.shape[0], bits.dtype)
    _abs_max_bits(bits, out)
    return out.view(a.dtype).astype(np.float64)


def _draw_trains(x: torch.Tensor, d: torch.Tensor, lr: float, cfg: UpdateConfig, generator: torch.Generator,
                 dw_min: float) -> _Trains:
    """Seed (one draw from ``generator``), plan (BL_n, A_n, B_n), trains and row lists of one call,
    shared by the row kernels of :func:`kernel_update_`, :func:`kernel_split_counts` and
    :mod:`analogkit.update.kernels_step`."""
    xn, dn = _inputs(x), _inputs(d)
    m, n_in = xn.shape
    n_out = dn.shape[1]
    mode = _COUNT_MODES[cfg.pulse_type]
    fixed_long = 0
    if not cfg.update_bl_management and not cfg.fixed_bl and lr > dw_min * cfg.desired_bl:
        fixed_long = int(math.ceil(lr / dw_min * (1.0 - CEIL_SLACK)))
    max_bl = max(cfg.desired_bl, fixed_long)
    nw = (max_bl + 63) // 64 if mode == _STOCHASTIC else 1
    seed = np.uint64(_seed(generator))
    ws = _workspace(m, n_in, n_out, nw)
    nact, nrow = ws["nact"], ws["nrow"]
    total_bl = _plan(abs_max_rows(xn), abs_max_rows(dn), float(lr), float(dw_min), int(cfg.desired_bl),
                     bool(cfg.update_bl_management), bool(cfg.update_management), float(cfg.um_grad_scale),
                     fixed_long, ws["bl"], ws["a_sc"], ws["b_sc"])
    if total_bl == 0:
        return _Trains(mode, nw, seed, ws, 0)
    draws = (n_in + n_out) * (total_bl if mode == _STOCHASTIC else m)
    _split(_trains_range, m, (2 * _threads()) if draws >= PARALLEL_MIN_BITS else 1,
           (xn, dn, mode, float(cfg.x_res_implicit), float(cfg.d_res_implicit), seed, np.uint64((max_bl + 1) // 2),
            ws["bl"], ws["a_sc"], ws["b_sc"], ws["colbits"], ws["colsgn"], ws["colval"], ws["colidx"], nact,
            ws["rowbits"], ws["rowsgn"], ws["rowval"], ws["rowidx"], nrow))
    work = int(np.dot(nact, nrow))
    if work:
        _row_lists(ws["rowidx"], nrow, ws["row_ptr"], ws["row_smp"])
    return _Trains(mode, nw, seed, ws, work)


@dataclass
class _Written:
    """What a kernel writes in place: the state's weights and write noise as contiguous arrays
    (working copies where the state holds strided views), copied back by :meth:`back`."""

    state: DeviceState
    w: torch.Tensor
    wn: torch.Tensor | None
    wn_scale: float  # write-noise scale (0: the device has none)

    @classmethod
    def of(cls, device: Device, state: DeviceState) -> _Written:
        wn = state.extra.get("write_noise")
        return cls(state, state.w if state.w.is_contiguous() else state.w.contiguous(),
                   None if wn is None else (wn if wn.is_contiguous() else wn.contiguous()),
                   float(device.write_noise_scale) if wn is not None else 0.0)

    def arrays(self, dtype: torch.dtype) -> tuple[np.ndarray, np.ndarray]:
        """(w, write noise) as numpy arrays (a 1×1 dummy without write noise)."""
        return self.w.detach().numpy(), _np(None, dtype) if self.wn is None else self.wn.detach().numpy()

    def back(self) -> None:
        if self.w is not self.state.w:
            self.state.w.copy_(self.w)
        wn = self.state.extra.get("write_noise")
        if self.wn is not None and self.wn is not wn:
            wn.copy_(self.wn)


def kernel_update_(
    device: Device, state: DeviceState, x: torch.Tensor, d: torch.Tensor, lr: float, cfg: UpdateConfig,
    generator: torch.Generator, dw_min: float,
) -> tuple[np.ndarray, int, int, str]:
    """Pulsed update in place with the fused kernel; returns (BL per sample, pulses, max count, kernel)."""
    params = kernel_params(device, state)
    dtype = state.w.dtype
    trains = _draw_trains(x, d, lr, cfg, generator, dw_min)
    ws, work, mode, seed = trains.ws, trains.work, trains.mode, trains.seed
    bl, nact = ws["bl"], ws["nact"]
    if work == 0:
        return bl.copy(), 0, 0, "none"
    row_ptr, row_smp = ws["row_ptr"], ws["row_smp"]
    n_out = d.shape[1]
    written = _Written.of(device, state)
    w_np, wn_np = written.arrays(dtype)
    has_slope = params.b_up is not None
    force_closed = cfg.pulse_application == "closed_form"
    # additive c2c noise on an affine step: the n-pulse law is Gaussian (exact) away from the bounds
    add_exact = has_slope and not force_closed and not params.mult and params.sigma > 0
    # multiplicative c2c noise on an affine step: the series law (module docstring), dense samples
    mult_exact = has_slope and not force_closed and params.mult and params.sigma > 0
    vec_affine = force_closed or add_exact or mult_exact
    if has_slope and not force_closed and params.sigma == 0:  # closed form exact where no step overshoots
        vec_affine = bool((params.b_up >= -1).all()) and bool((params.b_dn <= 1).all())
    row_pulses, row_max = ws["row_pulses"], ws["row_max"]
    parallel = work >= PARALLEL_MIN_WORK and _threads() > 1
    n_is_a = params.n_up is params.a_up and params.n_dn is params.a_dn
    _split(_row_block, n_out, (16 * _threads()) if parallel else 1, (
        w_np, _np(params.a_up, dtype), _np(params.b_up, dtype), _np(params.a_dn, dtype),
        _np(params.b_dn, dtype), _np(params.n_up, dtype), _np(params.n_dn, dtype), _np(params.ref, dtype),
        _np(state.w_min, dtype), _np(state.w_max, dtype), wn_np,
        _packed(params, state, dtype), n_is_a, has_slope, params.ref is not None, bool(params.mult), float(params.sigma),
        force_closed, bool(params.const_closed), _small_reversal(params.sigma), vec_affine, add_exact, mult_exact,
        written.wn_scale, int(ONE_SLOT_MASKED), min(GROUP_PULSES, 32 * STREAM_WORDS), float(CLOSED_MIN_PULSES),
        mode, bl, ws["colbits"], ws["colsgn"], ws["colval"], ws["colidx"], nact, ws["rowbits"], ws["rowsgn"],
        ws["rowval"], row_ptr, row_smp, seed, row_pulses, row_max,
    ))
    written.back()
    return bl.copy(), int(row_pulses.sum()), int(row_max.max()), "parallel" if parallel else "serial"


def kernel_split_counts(
    x: torch.Tensor, d: torch.Tensor, lr: float, cfg: UpdateConfig, generator: torch.Generator, dw_min: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per element, the call's coincidence counts summed over samples, split by direction:
    (up, down) int32 (out, in), up where the sample raises w (−sign(d_i·x_j) > 0).

    The same trains and counting rules as :func:`kernel_update_` (exact ``stochastic_compressed``
    coincidences, or the implicit / mean-count rules), for compounds that route a batch's pulses
    by direction (the one-sided pair). CPU only; one seed from ``generator``.
    """
    n_out, n_in = d.shape[1], x.shape[1]
    up = np.zeros((n_out, n_in), np.int32)
    down = np.zeros((n_out, n_in), np.int32)
    trains = _draw_trains(x, d, lr, cfg, generator, dw_min)
    ws = trains.ws
    if trains.work:
        parallel = trains.work >= PARALLEL_MIN_WORK and _threads() > 1
        _split(_count_block, n_out, (4 * _threads()) if parallel else 1, (
            trains.mode, ws["bl"], ws["colbits"], ws["colsgn"], ws["colval"], ws["colidx"], ws["nact"], ws["rowbits"],
            ws["rowsgn"], ws["rowval"], ws["row_ptr"], ws["row_smp"], trains.seed, up, down))
    return torch.from_numpy(up), torch.from_numpy(down)


def kernel_apply_counts_(
    device: Device, state: DeviceState, counts: torch.Tensor, rows: torch.Tensor | None, generator: torch.Generator,
    cols: torch.Tensor | None = None,
) -> None:
    """|counts| pulses in direction sign(counts) per element, in place, every element on its own (as
    ``device.pulse_n(..., method="auto")``, exact). ``counts``: (k, in) integer for the rows ``rows``
    (k distinct rows; None: all rows, k = out), or (out, k) for the columns ``cols`` (k distinct
    columns, all rows; then ``rows`` must be None). One seed from ``generator``; whole rows of
    multiplicative affine steps take the series law, constant steps their exact n-pulse sum away
    from the bounds (module docstring), the rest is pulsed one by one."""
    if rows is not None and cols is not None:
        raise ValueError("kernel_apply_counts_: give rows or cols, not both")
    params = kernel_params(device, state)
    dtype = state.w.dtype
    out = state.w.shape[0]
    rows_np = np.arange(out, dtype=np.int64) if rows is None else rows.to(torch.int64).cpu().numpy()
    cols_np = np.zeros(0, np.int64) if cols is None else cols.to(torch.int64).cpu().numpy()
    counts_np = counts.to(torch.int32).contiguous().cpu().numpy()
    written = _Written.of(device, state)
    w_np, wn_np = written.arrays(dtype)
    has_slope = params.b_up is not None
    mult_exact = has_slope and bool(params.mult) and params.sigma > 0
    const_exact = not has_slope and bool(params.const_closed)  # (the device's own closed-form rule)
    k = rows_np.shape[0]
    row_pulses = np.zeros(k, np.int64)
    row_max = np.zeros(k, np.int64)
    # element visits; a pulsed element of a whole-row pass costs about 16 scattered visits (series law
    # and two Gaussians per element of the row: in parallel from ~65k pulsed elements, measured
    # 29 vs 40 ms per mixed-precision/ecram_mo step against counting one visit each)
    work = int(np.count_nonzero(counts_np)) * (1 if cols is not None else 16)
    parallel = work >= PARALLEL_MIN_WORK and _threads() > 1
    _split(_counts_block, k, (4 * _threads()) if parallel else 1, (
        rows_np, cols_np, counts_np, w_np, _np(params.a_up, dtype), _np(params.b_up, dtype),
        _np(params.a_dn, dtype), _np(params.b_dn, dtype), _np(params.n_up, dtype), _np(params.n_dn, dtype),
        _np(params.ref, dtype), _np(state.w_min, dtype), _np(state.w_max, dtype), wn_np,
        params.n_up is params.a_up and params.n_dn is params.a_dn, has_slope, params.ref is not None,
        bool(params.mult), float(params.sigma), mult_exact, const_exact, written.wn_scale,
        int(np.abs(counts_np).max()) if counts_np.size else 0, np.uint64(_seed(generator)), row_pulses, row_max,
    ))
    written.back()
