"""Fused CPU kernel (numba) of the pulsed update for devices whose step is non-linear in w.

Covers :class:`analogkit.devices.ExpStepDevice` (the ``reram_es`` and ``pcm`` presets),
:class:`analogkit.devices.PowStepDevice` / ``PowStepReferenceDevice`` and
:class:`analogkit.devices.PiecewiseStepDevice`, whose n-pulse laws have no closed form: every pulse
is applied one after the other, as the reference back-end (:mod:`analogkit.update.reference`,
``pulse_n`` → ``_pulse_n_loop``) does. Same law as the reference, other random draws; the tests
compare their statistics per element.

Per call the plan, the pulse trains and the per-row sample lists are those of the affine-step
kernel (:mod:`analogkit.update.kernels`: ``_plan``, ``_trains_range``, ``_row_lists``), so the
counts have the exact ``stochastic_compressed`` semantics (coincidences of the row and column
trains), or the ``deterministic_implicit`` / ``mean_count`` rules. Rows are independent, so
threads take blocks of whole rows and walk each row's firing samples in order. Per element
(i, j) of sample n, with direction d = −sign(d_ni·x_nj) and count c, c pulses of the device's
``_mean_std_dir`` rule, w ← clip(w + m(w) + s(w)·ξ, b^min_ij, b^max_ij), with span = b^max − b^min::

    exp step:   z = 2a·w/span + b
                m = max(1 − A_up·e^{min(γ_up·z, 60)}, 0)·Δw⁺_ij          (up)
                m = −max(1 − A_down·e^{min(−γ_down·z, 60)}, 0)·Δw⁻_ij    (down)
                s = σ·|m|,  or σ·(|m| + σ_add + σ_slope·|w|) (complex noise); m = s = 0 if span <= 0
    pow step:   m = Δw⁺_ij·clip((b^max − w)/span, 0, 1)^{γ⁺_ij}  or  −Δw⁻_ij·clip((w − b^min)/span, 0, 1)^{γ⁻_ij}
                s = σ·|m|;  m = 0 if span <= 0
    piecewise:  x = max((w − b^min)/span·N, 0), k = min(⌊x⌋, N − 1), q = min(x − k, 1)
                m = ±Δw^±_ij·((1 − q)·v^±[k] + q·v^±[k+1]) (x = 0 if span <= 0),  s = σ·|m|

(AIHWKit ``ExpStepDevice``, ``PowStepDevice``, ``PiecewiseStepDevice``; Rasch et al. 2021,
arXiv:2104.02184.) Where span <= 0 the clip min(max(·, b^min), b^max) returns b^max whatever the
step, as the reference's clamp does, so the dense passes need not zero s there.

* **Counts**: a sample whose columns mostly fire (a quarter or more, "dense") is counted for
  every column in one vectorised popcount pass; other samples visit their firing columns only.
* **Batches**: the coinciding columns of consecutive samples are collected into one batch for as
  long as no column repeats; a sample that would repeat one first applies the batch. Each element
  is at most once in a batch, so the pulses of a batch's elements commute and every element still
  sees its samples in order (the exact semantics), while sparse samples (a transfer's one-hot
  columns, ``apply_counts_``' vector-samples) are applied together instead of one by one.
* **Groups**: consecutive dense samples are applied together, for as long as no element collects
  more than :data:`analogkit.update.kernels.GROUP_PULSES` pulses (and no count exceeds 32). Per
  element, its pulses in the group, in sample order, become a stream of direction bits (32 per
  word, :data:`STREAM_WORDS` words), so one sort and one gather serve the whole group instead of
  one per sample (the ``reram_es`` dense update: 94 → 51 ms at 512×512, one core). A sparse
  sample, or a dense one with counts above 32, first applies the group.
* **Passes**: a batch's or group's columns are sorted by their pulse count (descending, counting
  sort), so that pulse k is one pass over a prefix. Both directions' steps, the bounds and the
  law's parameters are gathered in sorted order into contiguous buffers in the state's dtype; in a
  pass, each lane reads its direction bit and selects the direction's parameters arithmetically,
  as down + f·(up − down) (a select of two loads would compile to a gather). Lane tests and the
  exponent's float-to-int step use 32-bit intrinsics (numba widens integer arithmetic to 64 bits,
  which halves the lanes). All Gaussians of the batch are drawn in one go
  (:func:`analogkit.periphery.kernels.row_normals`). A pass runs over the prefix rounded up to
  :data:`LANES` elements (the extra ones keep their weight), so that it never falls into a scalar
  remainder loop. The exponential and logarithm are :func:`fexp` / :func:`flog`, branch-free
  polynomials that vectorise (AVX2/AVX-512): about 0.9 ns per pulse with its Gaussian, plus
  about 0.3 ns per coinciding element and sample in a group (counting, direction streams; one
  core), 3 ns in a sparse batch (sorting and gathering per batch).

:func:`fexp`: e^x = 2ⁿ·e^r with n = rint(x/ln 2) and r = x − n·ln 2 (Cody & Waite 1980: ln 2 split
in a high part, exact in n·ln2_hi, and a low part), e^r on |r| <= ln2/2 by its Taylor polynomial
(degree 7 in float32, evaluated by Estrin's scheme, 13 in float64 by Horner's: truncation
< 0.1 ulp), 2ⁿ built from its IEEE bits (an LLVM bitcast). :func:`flog`: x = m·2^e from the IEEE
bits with m ∈ [1/√2, √2), f = m − 1 (exact), ln m = 2·artanh(s) = f − (f²/2 − s·(f²/2 + R)) with
s = f/(2 + f), |s| <= 0.172, R = 2s²/3 + 2s⁴/5 + … (to s¹⁰ in float32, s²² in float64; the
arrangement of fdlibm's ``__ieee754_log``). Both within 2 ulp of the correctly rounded result
(tested against numpy) on [−87.3, 88] / (0, ∞) in float32 and [−708.3, 709] / (0, ∞) in float64;
fexp returns the value at the end of its range beyond it (the exp step clamps its exponent at 60).

Random numbers: one 63-bit seed per call from the tile's ``torch.Generator``; every row has its
own counter-based stream (Gaussians of the pulses and of the write noise), the mean-count dithers
are keyed by element and sample: results repeat from the generator state and do not depend on the
number of threads. The write noise of every touched element is redrawn once at the end of its row
(the same law as redrawing it after every sample), by single ziggurat draws
(:func:`analogkit.periphery.kernels.gauss_scalar`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from analogkit._jit_cache import drop_stale_cache
from analogkit.devices.base import Device, DeviceState
from analogkit.devices.exp_step import _MAX_EXPONENT, ExpStepDevice
from analogkit.devices.piecewise_step import PiecewiseStepDevice
from analogkit.devices.pow_step import _PowFamily
from analogkit.update import kernels as _kernels
from analogkit.update.config import UpdateConfig
from analogkit.update.kernels import _IMPLICIT, _SORT_WAYS, _STOCHASTIC, HAVE_NUMBA

__all__ = [
    "HAVE_NUMBA",
    "LANES",
    "STEP_KERNEL_DEVICES",
    "StepParams",
    "fexp_array",
    "flog_array",
    "register_step_kernel_device",
    "step_kernel_apply_counts_",
    "step_kernel_supported",
    "step_kernel_update_",
]

#: Element visits (Σ_n firing rows × firing columns) above which the row blocks run on threads.
PARALLEL_MIN_WORK = _kernels.PARALLEL_MIN_WORK
#: A dense pass covers its prefix rounded up to a multiple of this (one AVX-512 float32 vector).
LANES = 16
#: Direction words per element of a group of dense samples (see :mod:`analogkit.update.kernels`).
STREAM_WORDS = _kernels.STREAM_WORDS

# step laws of the row kernel
_EXP, _POW, _PIECEWISE = 0, 1, 2

# slots of the per-call constants (an array in the state's dtype, so the arithmetic stays in it);
# _C_P0.. are the law's own: exp: 2a, b, γ_up, −γ_down, A_up, A_down; piecewise: N
_C_ONE, _C_ZERO, _C_SIGMA, _C_ADD, _C_SLOPE, _C_MAXE, _C_P0 = range(7)
_N_CONSTS = _C_P0 + 6

if HAVE_NUMBA:
    from llvmlite import ir
    from numba import njit
    from numba.core import types
    from numba.extending import intrinsic, overload

    from analogkit.periphery.kernels import (
        _GOLDEN,
        _mix64,
        _unit53,
        gauss_scalar,
        row_normals,
    )
    from analogkit.update.kernels import (
        _FULL,
        _below32,
        _bit_set32,
        _group_clear,
        _group_fit,
        _group_sorted,
        _popcount,
        _pow2_f32,
        _redraw_marked,
        _sort_by_count,
        _stream_add,
        _total_pulses,
    )

    _SEED_NOISE = np.uint64(0x510E527FADE682D1)
    _SLOW = np.uint64(0x9B05688C2B3E6C1F)
    _SEED_MEAN = np.uint64(0x1F83D9ABFB41BD6B)
    # fastmath: only contraction of a·b + c into one FMA (no reassociation, NaN/inf kept)
    _FM = {"contract"}

    @intrinsic
    def _f32_of(typingctx, bits):
        """The float32 whose IEEE bits are the low 32 bits of an int64 (LLVM trunc + bitcast)."""
        sig = types.float32(types.int64)

        def codegen(context, builder, signature, args):
            return builder.bitcast(builder.trunc(args[0], ir.IntType(32)), ir.FloatType())

        return sig, codegen

    @intrinsic
    def _f64_of(typingctx, bits):
        """The float64 whose IEEE bits are an int64 (LLVM bitcast)."""
        sig = types.float64(types.int64)

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], ir.DoubleType())

        return sig, codegen

    @intrinsic
    def _bits32(typingctx, x):
        """The IEEE bits of a float32, zero-extended to an int64 (LLVM bitcast + zext)."""
        sig = types.int64(types.float32)

        def codegen(context, builder, signature, args):
            return builder.zext(builder.bitcast(args[0], ir.IntType(32)), ir.IntType(64))

        return sig, codegen

    @intrinsic
    def _bits64(typingctx, x):
        """The IEEE bits of a float64 as an int64 (LLVM bitcast)."""
        sig = types.int64(types.float64)

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], ir.IntType(64))

        return sig, codegen

    _F32 = np.float32
    _I64 = np.int64

    @njit(cache=True, error_model="numpy", fastmath=_FM)
    def _exp32(x):
        """e^x in float32, branch-free (module docstring): x clamped to [−87.33, 88]."""
        x = min(max(x, _F32(-87.33654)), _F32(88.0))
        n = np.rint(x * _F32(1.4426950408889634))
        r = (x - n * _F32(0.693359375)) - n * _F32(-2.12194440e-4)
        # the Taylor polynomial to r⁷ by Estrin's scheme: four operations deep instead of seven FMAs
        # (a pass is one long dependency chain per lane; measured ~1 ms of 44 on the reram_es update)
        r2 = r * r
        r4 = r2 * r2
        lo = (r + _F32(1.0)) + r2 * (r * _F32(1.0 / 6.0) + _F32(0.5))
        hi = (r * _F32(1.0 / 120.0) + _F32(1.0 / 24.0)) + r2 * (r * _F32(1.0 / 5040.0) + _F32(1.0 / 720.0))
        return (lo + r4 * hi) * _pow2_f32(n)

    @njit(cache=True, error_model="numpy", fastmath=_FM)
    def _exp64(x):
        """e^x in float64, branch-free (module docstring): x clamped to [−708.39, 709]."""
        x = min(max(x, -708.3964185322641), 709.0)
        n = np.rint(x * 1.4426950408889634)
        r = (x - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10
        p = 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        return p * _f64_of((_I64(n) + _I64(1023)) << _I64(52))

    @njit(cache=True, error_model="numpy", fastmath=_FM)
    def _log32(x):
        """ln x in float32 for x > 0, branch-free (module docstring); x below the smallest normal
        number is taken as that number."""
        bits = _bits32(max(x, _F32(1.1754944e-38)))
        e = (bits >> _I64(23)) - _I64(127)
        m = _f32_of((bits & _I64(0x7FFFFF)) | _I64(0x3F800000))  # [1, 2)
        big = m > _F32(1.4142135)
        m = m * _F32(0.5) if big else m
        ef = _F32(e + (_I64(1) if big else _I64(0)))
        f = m - _F32(1.0)
        s = f / (_F32(2.0) + f)
        z = s * s
        r = _F32(2.0 / 11.0)
        r = r * z + _F32(2.0 / 9.0)
        r = r * z + _F32(2.0 / 7.0)
        r = r * z + _F32(2.0 / 5.0)
        r = r * z + _F32(2.0 / 3.0)
        hfsq = _F32(0.5) * f * f
        lnm = f - (hfsq - s * (hfsq + z * r))
        return ef * _F32(0.693359375) + (lnm + ef * _F32(-2.12194440e-4))

    @njit(cache=True, error_model="numpy", fastmath=_FM)
    def _log64(x):
        """ln x in float64 for x > 0, branch-free (module docstring); x below the smallest normal
        number is taken as that number."""
        bits = _bits64(max(x, 2.2250738585072014e-308))
        e = (bits >> _I64(52)) - _I64(1023)
        m = _f64_of((bits & _I64(0xFFFFFFFFFFFFF)) | _I64(0x3FF0000000000000))  # [1, 2)
        big = m > 1.4142135623730951
        m = m * 0.5 if big else m
        ef = np.float64(e + (_I64(1) if big else _I64(0)))
        f = m - 1.0
        s = f / (2.0 + f)
        z = s * s
        r = 2.0 / 23.0
        r = r * z + 2.0 / 21.0
        r = r * z + 2.0 / 19.0
        r = r * z + 2.0 / 17.0
        r = r * z + 2.0 / 15.0
        r = r * z + 2.0 / 13.0
        r = r * z + 2.0 / 11.0
        r = r * z + 2.0 / 9.0
        r = r * z + 2.0 / 7.0
        r = r * z + 2.0 / 5.0
        r = r * z + 2.0 / 3.0
        hfsq = 0.5 * f * f
        lnm = f - (hfsq - s * (hfsq + z * r))
        return ef * 6.93147180369123816490e-01 + (lnm + ef * 1.90821492927058770002e-10)

    def fexp(x: float) -> float:  # pragma: no cover - numba code calls the overload
        """e^x in the precision of x (float32 or float64), vectorisable; see the module docstring."""
        raise NotImplementedError("fexp is for numba code; see fexp_array")

    def flog(x: float) -> float:  # pragma: no cover - numba code calls the overload
        """ln x (x > 0) in the precision of x (float32 or float64), vectorisable; see the module docstring."""
        raise NotImplementedError("flog is for numba code; see flog_array")

    def _cast(x, like):  # pragma: no cover - numba code calls the overload
        raise NotImplementedError

    @overload(fexp)
    def _fexp_impl(x):
        if x == types.float32:
            return lambda x: _exp32(x)
        return lambda x: _exp64(x)

    @overload(flog)
    def _flog_impl(x):
        if x == types.float32:
            return lambda x: _log32(x)
        return lambda x: _log64(x)

    @overload(_cast)
    def _cast_impl(x, like):
        if like == types.float32:
            return lambda x, like: np.float32(x)
        return lambda x, like: np.float64(x)

    @njit(cache=True, error_model="numpy", fastmath=_FM)
    def _fill(x, out, log):
        if log:
            for k in range(x.shape[0]):
                out[k] = flog(x[k])
        else:
            for k in range(x.shape[0]):
                out[k] = fexp(x[k])

    # -- the step laws: mean step of one pulse from the gathered per-element parameters ----------
    @njit(cache=True, error_model="numpy", fastmath=_FM)
    def _mean_exp(wv, p1, p2, p3, m, bb, maxe, one, zero):
        """m·max(1 − A·e^{min(γ_d·(w·2a/span + b), 60)}, 0): p1 = 2a/span, p2 = ±γ, p3 = A."""
        return max(one - p3 * fexp(min(p2 * (wv * p1 + bb), maxe)), zero) * m

    @njit(cache=True, error_model="numpy", fastmath=_FM)
    def _mean_pow(wv, p1, p2, p3, m, one, zero):
        """m·f^γ, f = clip((p1 − w)·p2, 0, 1): p1 = bound moved to, p2 = ±1/span, p3 = γ (> 0)."""
        f = min(max((p1 - wv) * p2, zero), one)
        pw = fexp(p3 * flog(f))
        return (pw if f > zero else zero) * m

    @njit(inline="always", cache=True, error_model="numpy", fastmath=_FM)
    def _mean_piecewise(wv, lo, p1, p2, m, nsec, tab, one, zero):
        """m·((1 − q)·v[k] + q·v[k+1]), x = clip((w − lo)·N/span, 0, N): p1 = N/span (0 if span
        <= 0), p2 = offset of the direction's nodes in ``tab``."""
        x = min(max((wv - lo) * p1, zero), nsec)
        k = min(np.int64(x), np.int64(nsec) - 1)  # x >= 0: truncation is ⌊x⌋
        q = min(x - _cast(k, one), one)
        o = np.uint64(np.int64(p2) + k)  # unsigned: no negative-index wraparound
        return ((one - q) * tab[o] + q * tab[o + np.uint64(1)]) * m

    @njit(inline="always", cache=True, error_model="numpy", fastmath=_FM)
    def _exp_pass(n_pad, n_k, dk, bit, buf_w, buf_lo, buf_hi, buf_du, buf_md, buf_p1, zk, sigma, s_add, s_slope,
                  bb, g_up, g_dn, a_up, a_dn, maxe, one, zero, plain):
        """One pulse of the exp law on lanes 0..n_pad − 1 (see :func:`_sorted_passes`): w += mean + std·z
        with std = σ·(|mean| + s_add + s_slope·|w|), clipped to the bounds. ``plain`` (a literal, so
        that each case compiles to its own loop): s_add = s_slope = 0, std = σ·|mean| in two
        instructions instead of five."""
        for t in range(n_pad):
            up = _bit_set32(dk[t], bit)
            fu = one if up else zero
            wv = buf_w[t]
            mean = _mean_exp(wv, buf_p1[t], g_up if up else g_dn, a_up if up else a_dn,
                             buf_md[t] + fu * buf_du[t], bb, maxe, one, zero)
            if plain:
                new = wv + (mean + abs(mean) * (sigma * zk[t]))
            else:
                new = wv + mean + sigma * (abs(mean) + s_add + s_slope * abs(wv)) * zk[t]
            new = min(max(new, buf_lo[t]), buf_hi[t])
            buf_w[t] = new if _below32(t, n_k) else wv

    @njit(inline="always", cache=True, error_model="numpy", fastmath=_FM)
    def _sorted_passes(i, n_b, maxc, n_ge, n_pulses, law, w, dw_up, dw_dn, w_min, w_max, pe_up, pe_dn, tab, consts,
                       buf_j, buf_d, n_words, buf_w, buf_lo, buf_hi, buf_du, buf_md, buf_p1, buf_p2, buf_p3, zall,
                       base, ctr):
        """Apply the pulses of n_b elements (i, buf_j[t]) of row i, sorted by count (descending; n_ge[c]
        of them have count >= c). Pulse k of element t goes up if bit k % 32 of its direction word
        buf_d[min(k // 32, n_words − 1), t] is set (one word of equal bits for an element pulsed in
        one direction, a stream of words for a group of samples). Gathers their parameters into
        contiguous buffers (the down step and up minus down, 0 where the span is not > 0, see the
        module docstring, and the law's p1..p3), draws all their Gaussians in one go (``n_pulses``,
        from the row stream at ``ctr``), runs pulse k as one vectorised pass over the prefix of
        elements with count > k, each lane taking its direction's step as down + f·(up − down) with
        f ∈ {0, 1} (one FMA; within an ulp of the step), and writes the weights back. Returns the
        advanced ``ctr``."""
        one = consts[_C_ONE]
        zero = consts[_C_ZERO]
        sigma = consts[_C_SIGMA]
        s_add = consts[_C_ADD]
        s_slope = consts[_C_SLOPE]
        maxe = consts[_C_MAXE]
        two_a = consts[_C_P0]  # exp: 2a, b, γ_up, −γ_down, A_up, A_down
        bb = consts[_C_P0 + 1]
        g_up = consts[_C_P0 + 2]
        g_dn = consts[_C_P0 + 3]
        a_up = consts[_C_P0 + 4]
        a_dn = consts[_C_P0 + 5]
        nsec = consts[_C_P0]  # piecewise: N
        nsec1 = nsec + one
        plain = s_add == zero and s_slope == zero  # the exp law's noise std is σ·|mean|
        for t in range(n_b):
            j = buf_j[t]
            lo = w_min[i, j]
            hi = w_max[i, j]
            ok = hi - lo > zero
            buf_w[t] = w[i, j]
            buf_lo[t] = lo
            buf_hi[t] = hi
            down = -dw_dn[i, j] if ok else zero
            buf_du[t] = (dw_up[i, j] if ok else zero) - down
            buf_md[t] = down
        for t in range(n_b):
            span = buf_hi[t] - buf_lo[t]
            ok = span > zero
            if law == _EXP:
                buf_p1[t] = two_a / (span if ok else one)
            elif law == _POW:
                j = buf_j[t]
                buf_p1[t] = one / (span if ok else one)
                buf_p2[t] = pe_up[i, j] - pe_dn[i, j]
                buf_p3[t] = pe_dn[i, j]
            else:
                buf_p1[t] = nsec / span if ok else zero
        if sigma > zero:  # every Gaussian of the batch in one go
            row_normals(zall[:n_pulses], base + np.uint64(ctr) * _GOLDEN)
            ctr += n_pulses
        # pulse k: one pass over the prefix of elements with count > k, rounded up to LANES (elements
        # past the prefix keep their weight; their buffers hold finite values, so the extra lanes
        # compute harmlessly)
        off = 0
        for k in range(maxc):
            n_k = n_ge[k + 1]
            n_pad = (n_k + LANES - 1) // LANES * LANES
            zk = zall[off:]  # (zall[off + t] would be a gather: numba's index may be negative)
            dk = buf_d[min(k >> 5, n_words - 1)]
            bit = np.uint32(1 << (k & 31))
            if law == _EXP and plain:
                _exp_pass(n_pad, n_k, dk, bit, buf_w, buf_lo, buf_hi, buf_du, buf_md, buf_p1, zk, sigma, zero, zero,
                          bb, g_up, g_dn, a_up, a_dn, maxe, one, zero, True)
            elif law == _EXP:
                _exp_pass(n_pad, n_k, dk, bit, buf_w, buf_lo, buf_hi, buf_du, buf_md, buf_p1, zk, sigma, s_add,
                          s_slope, bb, g_up, g_dn, a_up, a_dn, maxe, one, zero, False)
            elif law == _POW:
                for t in range(n_pad):
                    up = _bit_set32(dk[t], bit)
                    fu = one if up else zero
                    wv = buf_w[t]
                    lo = buf_lo[t]
                    inv = buf_p1[t]
                    # bound moved to, ±1/span, exponent and step of the lane's direction
                    mean = _mean_pow(wv, lo + fu * (buf_hi[t] - lo), inv if up else -inv, buf_p3[t] + fu * buf_p2[t],
                                     buf_md[t] + fu * buf_du[t], one, zero)
                    new = min(max(wv + mean + sigma * abs(mean) * zk[t], lo), buf_hi[t])
                    buf_w[t] = new if _below32(t, n_k) else wv
            else:
                for t in range(n_pad):
                    up = _bit_set32(dk[t], bit)
                    fu = one if up else zero
                    wv = buf_w[t]
                    mean = _mean_piecewise(wv, buf_lo[t], buf_p1[t], zero if up else nsec1,
                                           buf_md[t] + fu * buf_du[t], nsec, tab, one, zero)
                    new = min(max(wv + mean + sigma * abs(mean) * zk[t], buf_lo[t]), buf_hi[t])
                    buf_w[t] = new if _below32(t, n_k) else wv
            off += n_k
        for t in range(n_b):
            w[i, buf_j[t]] = buf_w[t]
        return ctr

    @njit(inline="always", cache=True, error_model="numpy")
    def _room(zall, n_pulses):
        """zall, or a larger buffer if it cannot hold n_pulses Gaussians and a pass's LANES padding."""
        if n_pulses + LANES > zall.shape[0]:
            return np.zeros(max(n_pulses + LANES, 2 * zall.shape[0]), np.float32)
        return zall

    @njit(inline="always", cache=True, error_model="numpy")
    def _sort_buffers(n_in, max_c, w):
        """Work arrays of a row's sorted passes, for counts up to ``max_c``: the counting sort's
        permutation, sub-histograms, starts and n_ge[c] (positions with count >= c), then per sorted
        position t its column, its STREAM_WORDS direction words and, in w's dtype, weight, bounds,
        down step, up minus down step and law parameters p1..p3 (pow: 1/span, γ_up − γ_down and
        γ_down), with room for a pass rounded up to LANES."""
        n_bins = max_c + 2
        n_buf = n_in + LANES
        ftype = w.dtype
        return (np.zeros(n_in, np.int64), np.zeros((_SORT_WAYS, n_bins), np.int32),
                np.zeros((_SORT_WAYS, n_bins), np.int32), np.zeros(n_bins, np.int32), np.zeros(n_buf, np.int64),
                np.zeros((STREAM_WORDS, n_buf), np.uint32), np.zeros(n_buf, ftype), np.zeros(n_buf, ftype),
                np.zeros(n_buf, ftype), np.zeros(n_buf, ftype), np.zeros(n_buf, ftype), np.zeros(n_buf, ftype),
                np.zeros(n_buf, ftype), np.zeros(n_buf, ftype))

    @njit(cache=True, error_model="numpy", nogil=True, fastmath=_FM)
    def _row_block_step(
        i0, i1, w, dw_up, dw_dn, w_min, w_max, pe_up, pe_dn, tab, wn, consts, law, wn_scale, max_b,
        mode, bl, colbits, colsgn, colval, colidx, nact, rowbits, rowsgn, rowval, row_ptr, row_smp, seed,
        group_pulses, row_pulses, row_max,
    ):
        """Rows i0..i1 − 1 of the update; for each row, its firing samples in order.

        Consecutive dense samples are collected into a group for as long as no element's pulses in
        the group exceed ``group_pulses`` (<= 32·STREAM_WORDS): each element's pulses, in sample
        order, become a stream of direction bits (:func:`_stream_add`); the group is then applied
        at once, its columns sorted by their pulse total, pulse k one vectorised pass over the prefix
        of columns with more than k pulses (:func:`_sorted_passes`). One sort and one gather serve
        the whole group instead of one per sample. The coinciding columns of consecutive sparse
        samples are batched while no column repeats, and a batch is applied the same way. Then the
        write noise of the row's touched elements is redrawn.
        """
        n_in = w.shape[1]
        m_samples = bl.shape[0]
        nw = colbits.shape[1]
        track = wn_scale > 0.0
        seed_mean = _mix64(seed ^ _SEED_MEAN)
        touched = np.zeros(n_in, np.bool_)  # columns pulsed in this row (their write noise is redrawn)
        tlist = np.zeros(n_in, np.int64)
        inb = np.zeros(n_in, np.bool_)  # columns in the batch
        cnt = np.zeros(n_in, np.int32)
        sl = np.zeros(n_in, np.int64)  # the current sample's coinciding columns and counts
        sc = np.zeros(n_in, np.int64)
        lst = np.zeros(n_in, np.int64)  # the batch: columns, counts, directions (up)
        cl = np.zeros(n_in, np.int64)
        dirs = np.zeros(n_in, np.bool_)
        gpos = np.zeros(n_in, np.int32)  # the group: pulses per column so far, direction streams
        gd = np.zeros((STREAM_WORDS, n_in), np.uint32)
        (perm, hist, start, n_ge, buf_j, buf_d, buf_w, buf_lo, buf_hi, buf_du, buf_md, buf_p1, buf_p2,
         buf_p3) = _sort_buffers(n_in, max(max_b, group_pulses), w)
        zall = np.zeros(4 * n_in + LANES, np.float32)
        for i in range(i0, i1):
            base = _mix64(seed ^ _SEED_NOISE ^ (np.uint64(i) * _GOLDEN))
            slow = _mix64(base ^ _SLOW)
            ctr = 0
            pulses = 0
            cmax = 0
            n_t = 0  # touched columns of the row from sparse samples (tlist)
            row_dense = False  # a dense sample marked its columns: the end of the row scans them all
            n_b = 0  # columns in the batch (lst, cl, dirs)
            g_max = 0  # most pulses of a column in the group (0: no group)
            idx = row_ptr[i]
            end = row_ptr[i + 1]
            while True:
                # -- the next sample's coinciding columns and counts (cnt if dense, else sl and sc),
                #    and whether a sparse one repeats a column of the batch ------------------------
                n_s = 0
                conflict = True  # past the last sample, or dense: apply the batch first
                dense = False
                if idx < end:
                    n = row_smp[idx]
                    b = bl[n]
                    rv = rowval[n, i]
                    rs = rowsgn[n, i]
                    na = nact[n]
                    dense = 4 * na >= n_in
                    if dense:  # every column's count in one vectorised pass
                        if mode == _STOCHASTIC:
                            rb = rowbits[n, 0, i]
                            for j in range(n_in):
                                cnt[j] = np.int32(_popcount(rb & colbits[n, 0, j]))
                            for wd in range(1, nw):
                                rb = rowbits[n, wd, i]
                                for j in range(n_in):
                                    cnt[j] += np.int32(_popcount(rb & colbits[n, wd, j]))
                        elif mode == _IMPLICIT:
                            for j in range(n_in):
                                cnt[j] = np.int32(np.rint(float(b) * rv * colval[n, j]))
                        else:
                            key0 = (i * m_samples + n) * n_in
                            for j in range(n_in):
                                mu = float(b) * rv * colval[n, j]
                                fl = math.floor(mu)
                                u = _unit53(_mix64(seed_mean + np.uint64(key0 + j) * _GOLDEN))
                                cnt[j] = np.int32(fl) + np.int32(1 if u < mu - fl else 0)
                    else:  # the firing columns only
                        for k in range(na):
                            j = colidx[n, k]
                            if mode == _STOCHASTIC:
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
                            sl[n_s] = j
                            sc[n_s] = c
                            n_s += 1 if c > 0 else 0
                        conflict = False
                        for t in range(n_s):
                            conflict = conflict | inb[sl[t]]
                # -- the sample's counts, and the group's pulse total with them ----------------------
                c_max = 0
                g_new = 0
                if dense:
                    c_max, g_new, _ = _group_fit(cnt, gpos)
                one_word = c_max <= 32  # the group takes samples whose trains fit in a direction word
                if g_max > 0 and (not dense or not one_word or g_new > group_pulses):
                    # -- apply the group: its columns sorted by pulse total, the passes reading each
                    #    column's direction from its stream ------------------------------------------
                    n_live = _group_sorted(gpos, gd, g_max, hist, start, n_ge, perm, buf_d)
                    for t in range(n_live):
                        buf_j[t] = perm[t]
                    n_pulses = _total_pulses(n_ge, g_max)
                    zall = _room(zall, n_pulses)
                    ctr = _sorted_passes(i, n_live, g_max, n_ge, n_pulses, law, w, dw_up, dw_dn, w_min, w_max, pe_up,
                                         pe_dn, tab, consts, buf_j, buf_d, STREAM_WORDS, buf_w, buf_lo, buf_hi, buf_du,
                                         buf_md, buf_p1, buf_p2, buf_p3, zall, base, ctr)
                    pulses += n_pulses
                    if track:
                        row_dense = True
                        for t in range(n_live):
                            touched[buf_j[t]] = True
                    _group_clear(gpos, gd)
                    g_max = 0
                    g_new = c_max
                if conflict and n_b > 0:
                    # -- apply the batch: every column of it at most once, so its pulses commute
                    #    with the other columns' and each element still sees its samples in order.
                    #    Sorted by count (descending; counting sort with _SORT_WAYS interleaved
                    #    sub-histograms, so that equal counts do not chain through one memory cell,
                    #    as in kernels.py), so that pulse k acts on a prefix ------------------------
                    maxc = 0
                    for t in range(n_b):
                        maxc = max(maxc, cl[t])
                    _sort_by_count(cl, n_b, maxc, True, hist, start, n_ge, perm)
                    for t in range(n_b):
                        tt = perm[t]
                        buf_j[t] = lst[tt]
                        buf_d[0, t] = _FULL if dirs[tt] else np.uint32(0)
                        inb[lst[tt]] = False
                    n_pulses = _total_pulses(n_ge, maxc)
                    zall = _room(zall, n_pulses)
                    ctr = _sorted_passes(i, n_b, maxc, n_ge, n_pulses, law, w, dw_up, dw_dn, w_min, w_max, pe_up, pe_dn,
                                         tab, consts, buf_j, buf_d, 1, buf_w, buf_lo, buf_hi, buf_du, buf_md, buf_p1,
                                         buf_p2, buf_p3, zall, base, ctr)
                    pulses += n_pulses
                    cmax = max(cmax, maxc)
                    n_b = 0
                if idx >= end:
                    break
                if dense:
                    if c_max > 0:
                        if not one_word:
                            # -- trains longer than a direction word (BL > 32): the sample on its
                            #    own, one word of equal bits per column ------------------------------
                            n_live = _sort_by_count(cnt, n_in, c_max, False, hist, start, n_ge, perm)
                            for t in range(n_live):
                                j = perm[t]
                                buf_j[t] = j
                                buf_d[0, t] = _FULL if rs != colsgn[n, j] else np.uint32(0)
                            n_pulses = _total_pulses(n_ge, c_max)
                            zall = _room(zall, n_pulses)
                            ctr = _sorted_passes(i, n_live, c_max, n_ge, n_pulses, law, w, dw_up, dw_dn, w_min, w_max,
                                                 pe_up, pe_dn, tab, consts, buf_j, buf_d, 1, buf_w, buf_lo, buf_hi,
                                                 buf_du, buf_md, buf_p1, buf_p2, buf_p3, zall, base, ctr)
                            pulses += n_pulses
                            if track:
                                row_dense = True
                                for t in range(n_live):
                                    touched[buf_j[t]] = True
                        else:  # -- into the group ------------------------------------------------------
                            _stream_add(n, rs, cnt, colsgn, gpos, gd)
                            g_max = g_new
                        cmax = max(cmax, c_max)
                    idx += 1
                    continue
                # -- add the sample's columns to the batch ---------------------------------------
                for t in range(n_s):
                    j = sl[t]
                    lst[n_b] = j
                    cl[n_b] = sc[t]
                    dirs[n_b] = rs != colsgn[n, j]
                    inb[j] = True
                    n_b += 1
                    if not touched[j]:
                        touched[j] = True
                        tlist[n_t] = j
                        n_t += 1
                idx += 1
            # -- write noise of every touched element, then clear the marks ----------------------
            ctr, slow = _redraw_marked(i, n_in if row_dense else n_t, row_dense, tlist, touched, track, wn, wn_scale,
                                       base, ctr, slow)
            row_pulses[i] = pulses
            row_max[i] = cmax

    @njit(cache=True, error_model="numpy", nogil=True, fastmath=_FM)
    def _counts_block_step(t0, t1, rows, counts, w, dw_up, dw_dn, w_min, w_max, pe_up, pe_dn, tab, wn, consts, law,
                           wn_scale, max_c, seed, row_pulses):
        """Given counts on rows rows[t0..t1 − 1] (row t of ``counts``, all columns): |count| pulses in
        direction sign(count) per element, one after the other (elements are independent, so
        :func:`_sorted_passes` applies them all: sorted by count, pulse k one pass over a prefix).
        Then the write noise of every pulsed element is redrawn."""
        n_in = w.shape[1]
        track = wn_scale > 0.0
        cnt = np.zeros(n_in, np.int64)
        (perm, hist, start, n_ge, buf_j, buf_d, buf_w, buf_lo, buf_hi, buf_du, buf_md, buf_p1, buf_p2,
         buf_p3) = _sort_buffers(n_in, max_c, w)
        zall = np.zeros(n_in * max(max_c, 1) + LANES, np.float32)
        for t in range(t0, t1):
            i = rows[t]
            base = _mix64(seed ^ _SEED_NOISE ^ (np.uint64(i) * _GOLDEN))
            slow = _mix64(base ^ _SLOW)
            maxc = 0
            for j in range(n_in):
                c = abs(counts[t, j])
                cnt[j] = c
                maxc = max(maxc, c)
            if maxc == 0:
                continue
            n_live = _sort_by_count(cnt, n_in, maxc, False, hist, start, n_ge, perm)
            for q in range(n_live):
                j = perm[q]
                buf_j[q] = j
                buf_d[0, q] = _FULL if counts[t, j] > 0 else np.uint32(0)
            n_pulses = _total_pulses(n_ge, maxc)
            ctr = _sorted_passes(i, n_live, maxc, n_ge, n_pulses, law, w, dw_up, dw_dn, w_min, w_max, pe_up, pe_dn,
                                 tab, consts, buf_j, buf_d, 1, buf_w, buf_lo, buf_hi, buf_du, buf_md, buf_p1, buf_p2,
                                 buf_p3, zall, base, 0)
            row_pulses[t] = n_pulses
            if track:
                for q in range(n_live):
                    z, slow = gauss_scalar(base, ctr, slow)
                    ctr += 1
                    wn[i, buf_j[q]] = wn_scale * z

    drop_stale_cache(_counts_block_step)  # before any kernel of this module runs (see analogkit._jit_cache)


def _apply(x: np.ndarray, log: bool) -> np.ndarray:
    x = np.ascontiguousarray(x).reshape(-1)
    if x.dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype {x.dtype} is not allowed; use float32 or float64")
    out = np.empty_like(x)
    _fill(x, out, log)
    return out


def fexp_array(x: np.ndarray) -> np.ndarray:
    """The kernel's e^x (:func:`fexp`) of a float32 or float64 array, flattened (for tests)."""
    return _apply(x, False)


def flog_array(x: np.ndarray) -> np.ndarray:
    """The kernel's ln x (:func:`flog`, x > 0) of a float32 or float64 array, flattened (for tests)."""
    return _apply(x, True)


# ---------------------------------------------------------------------------------------------
# Which devices the kernel covers, and how their state maps onto its parameters
# ---------------------------------------------------------------------------------------------
@dataclass
class StepParams:
    """A device state in this kernel's form: the step law, per-element tensors, tile-wide constants.

    ``consts``: the law's constants (exp: 2a, b, γ_up, −γ_down, A_up, A_down; piecewise: N);
    ``pe_up``/``pe_dn``: per-element exponents (pow step); ``nodes``: v⁺ then v⁻ (piecewise);
    ``add``/``slope``: σ_add, σ_slope of the complex noise std σ·(|m| + σ_add + σ_slope·|w|) (exp step).
    """

    law: int
    consts: list[float]
    pe_up: torch.Tensor | None = None
    pe_dn: torch.Tensor | None = None
    nodes: list[float] = field(default_factory=lambda: [0.0])
    add: float = 0.0
    slope: float = 0.0


StepAdapter = Callable[[Device, DeviceState], "StepParams | None"]
#: Device classes this kernel covers, with the function mapping their state onto :class:`StepParams`
#: (None: this state is not covered, e.g. a power step with an exponent <= 0).
STEP_KERNEL_DEVICES: dict[type, StepAdapter] = {}
_ADAPTER_OF: dict[type, StepAdapter | None] = {}
# Methods whose semantics an adapter encodes: a subclass that overrides one of them is not covered.
_PHYSICS = ("_mean_std_dir", "pulse_n", "pulse", "_step_inplace", "_pulse_n_loop", "_pulse_n_closed",
            "_closed_form_exact", "_refresh_write_noise", "complex_noise")


def register_step_kernel_device(cls: type) -> Callable[[StepAdapter], StepAdapter]:
    """Decorator: register how this kernel reads states of ``cls`` (and subclasses not overriding physics)."""
    def deco(fn: StepAdapter) -> StepAdapter:
        STEP_KERNEL_DEVICES[cls] = fn
        _ADAPTER_OF.clear()
        return fn

    return deco


@register_step_kernel_device(ExpStepDevice)
def _exp_step(device: Device, state: DeviceState) -> StepParams:
    cplx = bool(device.complex_noise)
    return StepParams(
        law=_EXP, consts=[2.0 * device.a, device.b, device.gamma_up, -device.gamma_down, device.A_up, device.A_down],
        add=float(device.dw_min_std_add) if cplx else 0.0, slope=float(device.dw_min_std_slope) if cplx else 0.0,
    )


@register_step_kernel_device(_PowFamily)
def _pow_step(device: Device, state: DeviceState) -> StepParams | None:
    g_up, g_dn = state.gamma_up, state.gamma_down
    if not (bool((g_up > 0).all()) and bool((g_dn > 0).all())):
        return None  # 0^γ with γ <= 0 is not the kernel's f^γ = e^{γ ln f}
    return StepParams(law=_POW, consts=[], pe_up=g_up, pe_dn=g_dn)


@register_step_kernel_device(PiecewiseStepDevice)
def _piecewise_step(device: Device, state: DeviceState) -> StepParams:
    up, dn = list(device.piecewise_up), list(device.piecewise_down)
    if len(up) == 1:  # one node: a constant factor, written as one section with equal ends
        up, dn = up * 2, dn * 2
    return StepParams(law=_PIECEWISE, consts=[float(len(up) - 1)], nodes=up + dn)


def _adapter(device: Device) -> StepAdapter | None:
    cls = type(device)
    if cls in _ADAPTER_OF:
        return _ADAPTER_OF[cls]
    found = None
    for base in cls.__mro__:
        fn = STEP_KERNEL_DEVICES.get(base)
        if fn is None:
            continue
        same = all(getattr(cls, name, None) is getattr(base, name, None) for name in _PHYSICS)
        found = fn if same else None
        break
    _ADAPTER_OF[cls] = found
    return found


def _params(device: Device, state: DeviceState) -> StepParams | None:
    fn = _adapter(device)
    return None if fn is None else fn(device, state)


def step_kernel_supported(device: Device, state: DeviceState) -> bool:
    """Whether this kernel covers the device and state (numba present, CPU, float32/64, 2-D)."""
    return (
        HAVE_NUMBA
        and state.w.device.type == "cpu"
        and state.w.dtype in (torch.float32, torch.float64)
        and state.w.dim() == 2
        and _params(device, state) is not None
    )


def step_kernel_update_(
    device: Device, state: DeviceState, x: torch.Tensor, d: torch.Tensor, lr: float, cfg: UpdateConfig,
    generator: torch.Generator, dw_min: float,
) -> tuple[np.ndarray, int, int, str]:
    """Pulsed update in place with the fused kernel; returns (BL per sample, pulses, max count, kernel)."""
    params = _params(device, state)
    if params is None:
        raise ValueError(f"{type(device).__name__}: the numba step kernel does not cover this device or state")
    dtype = state.w.dtype
    arrays, consts = _kernel_args(device, state, params)
    trains = _kernels._draw_trains(x, d, lr, cfg, generator, dw_min)
    ws, work, mode, seed = trains.ws, trains.work, trains.mode, trains.seed
    bl, nact = ws["bl"], ws["nact"]
    if work == 0:
        return bl.copy(), 0, 0, "none"
    threads = _kernels._threads()
    row_ptr, row_smp = ws["row_ptr"], ws["row_smp"]
    n_out = d.shape[1]
    written = _kernels._Written.of(device, state)
    w_np, wn_np = written.arrays(dtype)
    row_pulses, row_max = ws["row_pulses"], ws["row_max"]
    parallel = work >= PARALLEL_MIN_WORK and threads > 1
    _kernels._split(_row_block_step, n_out, (16 * threads) if parallel else 1, (
        w_np, *arrays, wn_np, consts, params.law, written.wn_scale, int(bl.max()),
        mode, bl, ws["colbits"], ws["colsgn"], ws["colval"], ws["colidx"], nact, ws["rowbits"], ws["rowsgn"],
        ws["rowval"], row_ptr, row_smp, seed, min(_kernels.GROUP_PULSES, 32 * STREAM_WORDS), row_pulses, row_max,
    ))
    written.back()
    return bl.copy(), int(row_pulses.sum()), int(row_max.max()), "parallel" if parallel else "serial"


def _kernel_args(device: Device, state: DeviceState, params: StepParams) -> tuple:
    """The per-element arrays and per-call constants of the row kernels, in the state's dtype."""
    dtype = state.w.dtype
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    consts = np.zeros(_N_CONSTS, np_dtype)
    consts[_C_ONE] = 1.0
    consts[_C_SIGMA] = float(device.dw_min_std)
    consts[_C_ADD] = params.add
    consts[_C_SLOPE] = params.slope
    consts[_C_MAXE] = _MAX_EXPONENT
    consts[_C_P0:_C_P0 + len(params.consts)] = params.consts
    to_np = _kernels._np
    return (to_np(state.dw_up, dtype), to_np(state.dw_down, dtype), to_np(state.w_min, dtype),
            to_np(state.w_max, dtype), to_np(params.pe_up, dtype), to_np(params.pe_dn, dtype),
            np.asarray(params.nodes, dtype=np_dtype)), consts


def step_kernel_apply_counts_(device: Device, state: DeviceState, counts: torch.Tensor,
                              generator: torch.Generator) -> None:
    """|counts| pulses in direction sign(counts) per element of the whole array, in place, one after
    the other (as ``device.pulse_n(..., method="auto")``, which loops for these devices); one seed
    from ``generator``. ``counts``: integer, the array's shape."""
    params = _params(device, state)
    if params is None:
        raise ValueError(f"{type(device).__name__}: the numba step kernel does not cover this device or state")
    out = state.w.shape[0]
    counts_np = counts.to(torch.int32).contiguous().cpu().numpy()
    max_c = int(np.abs(counts_np).max()) if counts_np.size else 0
    if max_c == 0:
        return
    arrays, consts = _kernel_args(device, state, params)
    written = _kernels._Written.of(device, state)
    w_np, wn_np = written.arrays(state.w.dtype)
    # a pulsed element weighs 8 element visits (sort, gather, its Gaussians): a whole array of pulsed
    # elements then runs on threads (measured 32 → 29 ms per sgd/pcm dense step)
    work = int(np.count_nonzero(counts_np)) * 8
    threads = _kernels._threads()
    parallel = work >= PARALLEL_MIN_WORK and threads > 1
    _kernels._split(_counts_block_step, out, (4 * threads) if parallel else 1, (
        np.arange(out, dtype=np.int64), counts_np, w_np, *arrays, wn_np, consts, params.law, written.wn_scale, max_c,
        np.uint64(_kernels._seed(generator)), np.zeros(out, np.int64),
    ))
    written.back()
