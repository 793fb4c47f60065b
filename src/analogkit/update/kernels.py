"""Fused CPU kernel (numba) of the stochastic pulse update for affine-step devices.

Same semantics as the reference back-end (:mod:`analogkit.update.reference`), other random
draws; the tests compare their statistics. Two passes per call:

1. **Trains** (per sample, in parallel over samples when large): BL_n, A_n, B_n and every
   row's and column's bit train, drawn up front with a counter-based generator: train k of
   sample n starts a SplitMix64 stream at mix(seed ⊕ k), and one 64-bit draw gives two 32-bit
   uniforms, i.e. two slots (fires if u < p·2³²). A train is one uint64 word (BL <= 64; longer
   trains, possible only with ``fixed_bl=False``, take several words). Columns whose train is
   empty are dropped: each sample keeps a compacted list (index, bits, sign) of firing columns.
2. **Rows** (``prange`` over the rows of W): rows are independent, so each thread takes whole
   rows and walks the samples in order, and, for each sample whose row train is not empty, the
   firing columns: count = popcount(row bits & column bits), then the count's pulses are applied
   to w_ij. Every element therefore sees its samples in order, as the exact semantics require,
   and a sample with no coincidences in a row costs one word test.

Applying n pulses of one sample to one element (direction d = −sign(d_i·x_j), devices whose mean
step is affine in w, :class:`analogkit.devices.AffineStepDevice`)::

    per pulse (exact):  m = d·(a + b·(w + r)),  w ← clip(w + m + σ·(|m| or A)·ξ, w_min, w_max)
    n-pulse closed form: c = 1 + d·b, d₀ = m(w₀):
        mean = w₀ + d₀·Σ_{k<n} c^k
        var  = σ²d₀²·Σ_{k<n} q^{n−1−k} c^{2k}, q = c² + σ²b²   (multiplicative noise)
             = σ²A²·Σ_{k<n} c^{2k}                              (additive noise)
        w ← clip(mean + √var·ξ, w_min, w_max)

``pulse_application="exact"`` takes the closed form exactly where the device's own
``pulse_n(method="auto")`` would (no noise and c >= 0, or a constant step whose noisy steps
practically never reverse: Φ(−1/σ) < 10⁻³), decided per element, and loops pulse by pulse
otherwise; ``"closed_form"`` always takes it. Gaussians come from the ziggurat of
:mod:`analogkit.periphery.kernels` on one counter-based stream per row, drawn as they are
needed (one per closed-form application, one per pulse in the loop), and the write noise of every
touched element is redrawn once at the end of its row (the same law as redrawing per sample).

Row streams make the result independent of the number of threads; every call takes one 63-bit
seed from the tile's ``torch.Generator``, so a run repeats from the generator's state.

A second thread pool next to PyTorch's spinning OpenMP threads stalls small parallel calls;
below :data:`PARALLEL_MIN_WORK` element visits the serial kernels run (measured, see
``benchmarks/update_kernel.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from analogkit.devices.base import (
    REVERSAL_PROBABILITY_LIMIT,
    AffineStepDevice,
    Device,
    DeviceState,
    PulsedDevice,
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
    "KernelParams",
    "kernel_params",
    "kernel_supported",
    "kernel_update_",
    "register_kernel_device",
    "PARALLEL_MIN_WORK",
]

#: Element visits (Σ_n firing rows × firing columns) above which the parallel row kernel runs.
PARALLEL_MIN_WORK = 1 << 17
#: Train bits drawn (Σ samples × (in + out) × BL) above which the trains are drawn in parallel.
PARALLEL_MIN_BITS = 1 << 18
#: Constant steps: a column whose mean path over the call keeps MARGIN·σ_total away from its bounds
#: gets the sum of its samples in one Gaussian draw; the per-sample clipping could only have acted if
#: the noise's running sum strayed beyond MARGIN·σ_total, probability <= 4·Φ(−MARGIN) = 2.5e-15.
MARGIN = 8.0

# count modes of the row kernel
_STOCHASTIC, _IMPLICIT, _MEAN = 0, 1, 2
_COUNT_MODES = {"stochastic_compressed": _STOCHASTIC, "deterministic_implicit": _IMPLICIT, "mean_count": _MEAN}

if HAVE_NUMBA:
    from numba import njit, prange
    from numba.core import types
    from numba.extending import intrinsic

    from analogkit.periphery.kernels import _GOLDEN, _candidate, _mix64, _normal_slow, _row_normals, _unit53

    _LO32 = np.uint64(0xFFFFFFFF)
    _SEED_COLS = np.uint64(0x6A09E667F3BCC909)
    _SEED_ROWS = np.uint64(0xBB67AE8584CAA73B)
    _SEED_NOISE = np.uint64(0x3C6EF372FE94F82B)
    _SLOW = np.uint64(0xD1B54A32D192ED03)
    _SEED_MEAN = np.uint64(0xA54FF53A5F1D36F1)
    # Ziggurat tables as globals (compile-time constants): passing arrays to helpers costs
    # reference counting on every call, which made a helper-drawn Gaussian 10× slower (measured).
    _ZX = _pk.ZIG_X
    _ZR = _pk.ZIG_R

    @intrinsic
    def _popcount(typingctx, x):
        """Number of set bits of a uint64 (LLVM ctpop: POPCNT, or VPOPCNTQ when vectorised)."""
        sig = types.uint64(types.uint64)

        def codegen(context, builder, signature, args):
            return builder.ctpop(args[0])

        return sig, codegen

    @njit(inline="always", cache=True, error_model="numpy")
    def _gauss(base, ctr, slow):
        """N(0, 1) draw ``ctr`` of the row stream ``base`` (ziggurat; rare rejections on ``slow``)."""
        z, u, layer = _candidate(base, ctr, _ZX)
        if abs(u) >= _ZR[layer]:
            z, slow = _normal_slow(slow, u, layer, _ZX, _ZR)
        return z, slow

    @njit(cache=True, error_model="numpy")
    def _plan(x, d, lr, dw_min, desired_bl, bl_mgmt, um, k_um, fixed_long, bl, a_sc, b_sc):
        """BL_n, A_n, B_n per sample (formulas of :mod:`analogkit.update.trains`); returns Σ BL_n."""
        total = 0
        for n in range(x.shape[0]):
            xm = 0.0
            for j in range(x.shape[1]):
                xm = max(xm, abs(x[n, j]))
            dm = 0.0
            for i in range(d.shape[1]):
                dm = max(dm, abs(d[n, i]))
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
    def _draw_bits(out, thr, stream, first, n_pairs, b, wd):
        """Word ``wd`` (slots 64·wd .. min(b, 64·wd + 64) − 1) of trains k = 0..len(out) − 1 with
        per-slot probability thr[k]/2³². Slot pair h of train t is the draw
        mix(stream + (t·n_pairs + h + 1)·G), t = first + k: low 32 bits → slot 2h, high → 2h + 1.
        The loop over trains is innermost, so it vectorises."""
        t0 = 64 * wd
        width = min(b, t0 + 64) - t0
        for k in range(out.shape[0]):
            out[k] = np.uint64(0)
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
    def _sample_trains(n, x, d, mode, x_res, d_res, seed, n_pairs, bl, a_sc, b_sc,
        colbits, colsgn, colval, colidx, nact, rowbits, rowsgn, rowval, nrow):
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
            thr = np.empty(n_in, np.uint64)
            for j in range(n_in):
                xv = x[n, j]
                thr[j] = np.uint64(min(a_n * abs(xv), 1.0) * two32)
                colsgn[n, j] = 1 if xv > 0 else -1
            for wd in range(nw):
                _draw_bits(colbits[n, wd], thr, seed ^ _SEED_COLS, n * n_in, n_pairs, b, wd)
            cnt = 0
            for j in range(n_in):
                fired = False
                for wd in range(nw):
                    fired = fired or colbits[n, wd, j] != np.uint64(0)
                if fired:
                    colidx[n, cnt] = j
                    cnt += 1
            nact[n] = cnt
            thr_r = np.empty(n_out, np.uint64)
            tmp = np.empty(n_out, np.uint64)
            for i in range(n_out):
                dv = d[n, i]
                thr_r[i] = np.uint64(min(b_n * abs(dv), 1.0) * two32)
                rowsgn[i, n] = 1 if dv > 0 else -1
            for i in range(n_out):
                rowval[i, n] = 0.0
            for wd in range(nw):
                _draw_bits(tmp, thr_r, seed ^ _SEED_ROWS, n * n_out, n_pairs, b, wd)
                for i in range(n_out):
                    rowbits[i, n, wd] = tmp[i]
                    if tmp[i] != np.uint64(0):
                        rowval[i, n] = 1.0
            rows = 0
            for i in range(n_out):
                if rowval[i, n] > 0.0:
                    rows += 1
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
            rowsgn[i, n] = 1 if dv > 0 else -1
            q = min(b_n * abs(dv), 1.0)
            if mode == _IMPLICIT:
                q = min(np.rint(q / r_d) * r_d, 1.0)
            rowval[i, n] = q if q > 0.0 else 0.0
            if q > 0.0:
                rows += 1
        nrow[n] = rows if cnt > 0 else 0

    @njit(cache=True, error_model="numpy")
    def _trains_serial(x, d, mode, x_res, d_res, seed, n_pairs, bl, a_sc, b_sc,
        colbits, colsgn, colval, colidx, nact, rowbits, rowsgn, rowval, nrow):
        for n in range(x.shape[0]):
            _sample_trains(n, x, d, mode, x_res, d_res, seed, n_pairs, bl, a_sc, b_sc,
        colbits, colsgn, colval, colidx, nact, rowbits, rowsgn, rowval, nrow)

    @njit(parallel=True, cache=True, error_model="numpy")
    def _trains_parallel(x, d, mode, x_res, d_res, seed, n_pairs, bl, a_sc, b_sc,
        colbits, colsgn, colval, colidx, nact, rowbits, rowsgn, rowval, nrow):
        for n in prange(x.shape[0]):
            _sample_trains(n, x, d, mode, x_res, d_res, seed, n_pairs, bl, a_sc, b_sc,
        colbits, colsgn, colval, colidx, nact, rowbits, rowsgn, rowval, nrow)

    @njit(inline="always", cache=True, error_model="numpy")
    def _count(mode, i, n, j, b, rv, rowbits, colbits, colval, seed_mean, m_samples, n_in):
        """Pulses of element (i, j) in sample n (recomputable: mean_count's dither is keyed, not sequential)."""
        if mode == _STOCHASTIC:
            c = 0
            for wd in range(colbits.shape[1]):
                c += int(_popcount(rowbits[i, n, wd] & colbits[n, wd, j]))
            return c
        mu = float(b) * rv * colval[n, j]
        if mode == _IMPLICIT:
            return int(np.rint(mu))
        fl = math.floor(mu)
        u = _unit53(_mix64(seed_mean + np.uint64((i * m_samples + n) * n_in + j) * _GOLDEN))
        return int(fl) + (1 if u < mu - fl else 0)

    @njit(inline="always", cache=True, error_model="numpy")
    def _series(n, y):
        """Σ_{k<n} (1 + y)^k for |y| <= 1e-6: n + C(n,2)·y + C(n,3)·y² (relative error < 1e-12 for n <= 64)."""
        return n + 0.5 * n * (n - 1.0) * y + n * (n - 1.0) * (n - 2.0) / 6.0 * y * y

    @njit(inline="always", cache=True, error_model="numpy")
    def _closed(c, slope, sigma, mult, nv, d0):
        """Moments of c pulses of an affine step (mean step d0 at the start, c = 1 + slope per pulse):
        (Σ_{k<c} (1+slope)^k, variance), see the module docstring. Scalars only and no branches, so
        that a loop over a row's elements vectorises (binary powers: c < 128)."""
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
        geom = _series(n, slope) if abs(slope) <= 1e-6 else (pc - 1.0) / slope
        # multiplicative noise: Σ_{k<c} q^{c-1-k} cc^{2k} with q = cc² + σ²slope²
        #   = (q^c − cc^{2c})/(σ²slope²), or cc^{2(c-1)}·Σ_{k<c} (1+x)^k for x = σ²slope²/cc² <= 1e-6
        ss = (sigma * slope) * (sigma * slope)
        x = ss / c2 if c2 > 0.0 else 1.0
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
        # additive noise: Σ_{k<c} cc^{2k}
        y = c2 - 1.0
        s2_add = _series(n, y) if abs(y) <= 1e-6 else (pc * pc - 1.0) / y
        var = sigma * sigma * (d0 * d0 * s2_mult if mult else nv * nv * s2_add)
        return geom, (var if sigma > 0.0 else 0.0)

    @njit(cache=True, error_model="numpy")
    def _row_block(i0, i1, w, a_up, b_up, a_dn, b_dn, n_up, n_dn, ref, w_min, w_max, wn,
        has_slope, has_ref, mult, sigma, force_closed, const_closed, small_rev, vec_affine, wn_scale,
        mode, bl, colbits, colsgn, colval, colidx, nact, rowbits, rowsgn, rowval, seed, row_pulses, row_max):
        """Rows i0..i1 − 1; for each row, every sample in order (see the module docstring).

        Counts: a sample whose columns mostly fire (stochastic trains) is counted for every column
        in one vectorised popcount pass; other samples visit their firing columns only.
        Application, by device:
        * constant steps (closed form exact): per column, the sum over samples of the means and
          variances and the range of the mean path are accumulated; at the end of the row a column
          whose mean path keeps MARGIN·σ_total away from both bounds gets w ← w + Σμ + σ_total·ξ
          (one Gaussian), any other column replays its samples one by one;
        * affine steps in closed form: per sample, one vectorised pass (binary powers);
        * otherwise: per element, its pulses one by one (or the closed form where it is exact).
        """
        n_in = w.shape[1]
        m_samples = bl.shape[0]
        track = wn_scale > 0.0
        agg = (not has_slope) and (force_closed or const_closed)
        vaff = has_slope and vec_affine
        seed_mean = _mix64(seed ^ _SEED_MEAN)
        touched = np.zeros(n_in, np.bool_)
        tlist = np.zeros(n_in, np.int64)
        cnt = np.zeros(n_in, np.int64)
        lst = np.zeros(n_in, np.int64)
        zbuf = np.zeros(n_in, np.float64)
        rej = np.zeros(n_in, np.bool_)
        acc_m = np.zeros(n_in if agg else 1, np.float64)
        acc_v = np.zeros(n_in if agg else 1, np.float64)
        path_lo = np.zeros(n_in if agg else 1, np.float64)
        path_hi = np.zeros(n_in if agg else 1, np.float64)
        safe = np.zeros(n_in if agg else 1, np.bool_)
        per_pulse = not agg and not vaff
        nbuf = n_in if per_pulse else 1
        perm = np.zeros(nbuf, np.int64)
        hist = np.zeros(65 * colbits.shape[1] + 2, np.int64)
        start = np.zeros(65 * colbits.shape[1] + 2, np.int64)
        wb = np.zeros(nbuf, np.float64)
        ab = np.zeros(nbuf, np.float64)
        bb = np.zeros(nbuf, np.float64)
        rb = np.zeros(nbuf, np.float64)
        nb = np.zeros(nbuf, np.float64)
        lob = np.zeros(nbuf, np.float64)
        hib = np.zeros(nbuf, np.float64)
        for i in range(i0, i1):
            base = _mix64(seed ^ _SEED_NOISE ^ (np.uint64(i) * _GOLDEN))
            slow = _mix64(base ^ _SLOW)
            ctr = 0
            pulses = 0
            cmax = 0
            row_dense = False
            n_t = 0
            for n in range(m_samples):
                b = bl[n]
                if b == 0:
                    continue
                rv = rowval[i, n]
                if not rv > 0.0:
                    continue
                rs = rowsgn[i, n]
                na = nact[n]
                dense = mode == _STOCHASTIC and 4 * na >= n_in
                # -- counts ------------------------------------------------------------------
                if dense:
                    row_dense = True
                    rb = rowbits[i, n, 0]
                    for j in range(n_in):
                        cnt[j] = _popcount(rb & colbits[n, 0, j])
                    for wd in range(1, colbits.shape[1]):
                        rb = rowbits[i, n, wd]
                        for j in range(n_in):
                            cnt[j] += _popcount(rb & colbits[n, wd, j])
                    n_list = n_in
                else:
                    n_list = 0
                    for k in range(na):
                        j = colidx[n, k]
                        if mode == _STOCHASTIC:  # written out: a helper taking arrays costs refcounting
                            c = 0
                            for wd in range(colbits.shape[1]):
                                c += int(_popcount(rowbits[i, n, wd] & colbits[n, wd, j]))
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
                # -- constant steps: accumulate ---------------------------------------------
                if agg:
                    if dense:
                        for j in range(n_in):
                            c = cnt[j]
                            up = rs != colsgn[n, j]
                            av = a_up[i, j] if up else a_dn[i, j]
                            nv = n_up[i, j] if up else n_dn[i, j]
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
                            up = rs != colsgn[n, j]
                            av = a_up[i, j] if up else a_dn[i, j]
                            nv = n_up[i, j] if up else n_dn[i, j]
                            sc = abs(av) if mult else abs(nv)
                            mm = acc_m[j] + (c * av if up else -c * av)
                            acc_m[j] = mm
                            acc_v[j] += c * sc * sc
                            path_lo[j] = min(path_lo[j], mm)
                            path_hi[j] = max(path_hi[j], mm)
                            pulses += c
                            cmax = max(cmax, c)
                    continue
                # -- affine steps, closed form, whole row at once -------------------------------
                if vaff and dense:
                    if sigma > 0.0:
                        _row_normals(zbuf, rej, base + np.uint64(ctr) * _GOLDEN, _ZX, _ZR)
                        ctr += n_in
                    for j in range(n_in):
                        c = cnt[j]
                        up = rs != colsgn[n, j]
                        sg = 1.0 if up else -1.0
                        av = a_up[i, j] if up else a_dn[i, j]
                        bv = b_up[i, j] if up else b_dn[i, j]
                        nv = n_up[i, j] if up else n_dn[i, j]
                        rr = ref[i, j] if has_ref else 0.0
                        w0 = w[i, j]
                        d0 = sg * (av + bv * (w0 + rr))
                        geom, var = _closed(c, sg * bv, sigma, mult, nv, d0)
                        new = w0 + d0 * geom + math.sqrt(max(var, 0.0)) * zbuf[j]
                        new = min(max(new, w_min[i, j]), w_max[i, j])
                        w[i, j] = new if c > 0 else w0
                        pulses += c
                        cmax = max(cmax, c)
                        touched[j] = touched[j] | (c > 0)
                    continue
                # -- pulse by pulse, whole row: sort the columns by count (descending), so that pulse k
                #    acts on a prefix; each pass draws its Gaussians in one go and vectorises ----------
                if dense:
                    maxc = 0
                    for j in range(n_in):
                        maxc = max(maxc, cnt[j])
                    for c in range(maxc + 2):
                        hist[c] = 0
                    for j in range(n_in):
                        hist[cnt[j]] += 1
                    run = 0
                    for c in range(maxc, 0, -1):
                        start[c] = run
                        run += hist[c]
                    n_live = run
                    for j in range(n_in):
                        c = cnt[j]
                        if c > 0:
                            pos = start[c]
                            start[c] = pos + 1
                            perm[pos] = j
                    for t in range(n_live):
                        j = perm[t]
                        up = rs != colsgn[n, j]
                        sg = 1.0 if up else -1.0
                        wb[t] = w[i, j]
                        ab[t] = sg * (a_up[i, j] if up else a_dn[i, j])
                        bb[t] = sg * (b_up[i, j] if up else b_dn[i, j]) if has_slope else 0.0
                        rb[t] = ref[i, j] if has_ref else 0.0
                        nb[t] = sigma * abs(n_up[i, j] if up else n_dn[i, j])
                        lob[t] = w_min[i, j]
                        hib[t] = w_max[i, j]
                        touched[j] = True
                        c = cnt[j]
                        pulses += c
                        cmax = max(cmax, c)
                    n_k = n_live
                    for k in range(maxc):
                        if sigma > 0.0:
                            _row_normals(zbuf[:n_k], rej[:n_k], base + np.uint64(ctr) * _GOLDEN, _ZX, _ZR)
                            ctr += n_k
                        for t in range(n_k):
                            wv = wb[t]
                            mstep = ab[t] + bb[t] * (wv + rb[t])
                            std = sigma * abs(mstep) if mult else nb[t]
                            wb[t] = min(max(wv + mstep + std * zbuf[t], lob[t]), hib[t])
                        n_k -= hist[k + 1]
                    for t in range(n_live):
                        w[i, perm[t]] = wb[t]
                    continue
                # -- element by element ---------------------------------------------------------
                for t in range(n_list):
                    c = cnt[t]
                    if c == 0:
                        continue
                    j = t if dense else lst[t]
                    pulses += c
                    cmax = max(cmax, c)
                    touched[j] = True
                    up = rs != colsgn[n, j]
                    sg = 1.0 if up else -1.0
                    av = a_up[i, j] if up else a_dn[i, j]
                    nv = n_up[i, j] if up else n_dn[i, j]
                    lo = w_min[i, j]
                    hi = w_max[i, j]
                    wv = float(w[i, j])
                    if not has_slope:  # constant step, pulse by pulse (closed form not exact)
                        std1 = sigma * (abs(av) if mult else abs(nv))
                        for _ in range(c):
                            z, slow = _gauss(base, ctr, slow)
                            ctr += 1
                            wv = min(max(wv + sg * av + std1 * z, lo), hi)
                        w[i, j] = wv
                        continue
                    bv = b_up[i, j] if up else b_dn[i, j]
                    rr = ref[i, j] if has_ref else 0.0
                    slope = sg * bv
                    if force_closed or (sigma == 0.0 and slope >= -1.0) or (slope == 0.0 and small_rev):
                        d0 = sg * (av + bv * (wv + rr))
                        geom, var = _closed(c, slope, sigma, mult, nv, d0)
                        new = wv + d0 * geom
                        if var > 0.0:
                            z, slow = _gauss(base, ctr, slow)
                            ctr += 1
                            new += math.sqrt(var) * z
                        w[i, j] = min(max(new, lo), hi)
                    else:
                        add_std = sigma * abs(nv)
                        for _ in range(c):
                            mstep = sg * (av + bv * (wv + rr))
                            std = sigma * abs(mstep) if mult else add_std
                            z, slow = _gauss(base, ctr, slow)
                            ctr += 1
                            wv = min(max(wv + mstep + std * z, lo), hi)
                        w[i, j] = wv
            # -- end of row: constant steps get their accumulated update -----------------------
            n_scan = n_in if row_dense else n_t
            if agg and n_scan > 0:
                if row_dense and sigma > 0.0:
                    _row_normals(zbuf, rej, base + np.uint64(ctr) * _GOLDEN, _ZX, _ZR)
                    ctr += n_in
                    for j in range(n_in):
                        w0 = w[i, j]
                        sd = sigma * math.sqrt(acc_v[j])
                        ok = (w0 + path_lo[j] - MARGIN * sd >= w_min[i, j]) and (w0 + path_hi[j] + MARGIN * sd <= w_max[i, j])
                        safe[j] = ok
                        new = min(max(w0 + acc_m[j] + sd * zbuf[j], w_min[i, j]), w_max[i, j])
                        w[i, j] = new if ok else w0
                        acc_m[j] = 0.0
                        acc_v[j] = 0.0
                        path_lo[j] = 0.0
                        path_hi[j] = 0.0
                for t in range(n_scan):
                    j = t if row_dense else tlist[t]
                    if row_dense and sigma > 0.0:
                        if safe[j]:
                            continue
                    else:
                        w0 = w[i, j]
                        sd = sigma * math.sqrt(acc_v[j])
                        ok = (w0 + path_lo[j] - MARGIN * sd >= w_min[i, j]) and (w0 + path_hi[j] + MARGIN * sd <= w_max[i, j])
                        if ok:
                            new = w0 + acc_m[j]
                            if sd > 0.0:
                                z, slow = _gauss(base, ctr, slow)
                                ctr += 1
                                new += sd * z
                            w[i, j] = min(max(new, w_min[i, j]), w_max[i, j])
                        acc_m[j] = 0.0
                        acc_v[j] = 0.0
                        path_lo[j] = 0.0
                        path_hi[j] = 0.0
                        if ok:
                            continue
                    # near a bound: replay this column's samples one by one (exact per-sample law)
                    wv = float(w[i, j])
                    lo = w_min[i, j]
                    hi = w_max[i, j]
                    for n in range(m_samples):
                        b = bl[n]
                        rv = rowval[i, n]
                        if b == 0 or not rv > 0.0:
                            continue
                        c = _count(mode, i, n, j, b, rv, rowbits, colbits, colval, seed_mean, m_samples, n_in)
                        if c == 0:
                            continue
                        up = rowsgn[i, n] != colsgn[n, j]
                        av = a_up[i, j] if up else a_dn[i, j]
                        nv = n_up[i, j] if up else n_dn[i, j]
                        new = wv + (c * av if up else -c * av)
                        if sigma > 0.0:
                            z, slow = _gauss(base, ctr, slow)
                            ctr += 1
                            new += sigma * (abs(av) if mult else abs(nv)) * math.sqrt(c) * z
                        wv = min(max(new, lo), hi)
                    w[i, j] = wv
            # -- write noise of every touched element, then reset the marks --------------------
            for t in range(n_scan):
                j = t if row_dense else tlist[t]
                if touched[j]:
                    touched[j] = False
                    if track:
                        z, slow = _gauss(base, ctr, slow)
                        ctr += 1
                        wn[i, j] = wn_scale * z
            row_pulses[i] = pulses
            row_max[i] = cmax

    @njit(cache=True, error_model="numpy")
    def _rows_serial(w, a_up, b_up, a_dn, b_dn, n_up, n_dn, ref, w_min, w_max, wn,
        has_slope, has_ref, mult, sigma, force_closed, const_closed, small_rev, vec_affine, wn_scale,
        mode, bl, colbits, colsgn, colval, colidx, nact, rowbits, rowsgn, rowval, seed, row_pulses, row_max):
        _row_block(0, w.shape[0], w, a_up, b_up, a_dn, b_dn, n_up, n_dn, ref, w_min, w_max, wn,
        has_slope, has_ref, mult, sigma, force_closed, const_closed, small_rev, vec_affine, wn_scale,
        mode, bl, colbits, colsgn, colval, colidx, nact, rowbits, rowsgn, rowval, seed, row_pulses, row_max)

    #: rows per block of the parallel kernel (amortises the call, several blocks per thread)
    _BLOCK = 8

    @njit(parallel=True, cache=True, error_model="numpy")
    def _rows_parallel(w, a_up, b_up, a_dn, b_dn, n_up, n_dn, ref, w_min, w_max, wn,
        has_slope, has_ref, mult, sigma, force_closed, const_closed, small_rev, vec_affine, wn_scale,
        mode, bl, colbits, colsgn, colval, colidx, nact, rowbits, rowsgn, rowval, seed, row_pulses, row_max):
        n_blocks = (w.shape[0] + _BLOCK - 1) // _BLOCK
        for blk in prange(n_blocks):
            _row_block(blk * _BLOCK, min(w.shape[0], (blk + 1) * _BLOCK), w, a_up, b_up, a_dn, b_dn, n_up, n_dn, ref, w_min, w_max, wn,
        has_slope, has_ref, mult, sigma, force_closed, const_closed, small_rev, vec_affine, wn_scale,
        mode, bl, colbits, colsgn, colval, colidx, nact, rowbits, rowsgn, rowval, seed, row_pulses, row_max)


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
# Methods whose semantics an adapter encodes: a subclass that overrides one of them is not covered.
_PHYSICS = ("_affine_dir", "_mean_std_dir", "_mult_noise", "_pulse_n_closed", "_closed_form_exact",
            "pulse_n", "pulse", "_step_inplace", "_pulse_n_loop", "_refresh_write_noise")


def register_kernel_device(cls: type) -> Callable[[Adapter], Adapter]:
    """Decorator: register how the kernel reads states of ``cls`` (and subclasses not overriding physics)."""
    def deco(fn: Adapter) -> Adapter:
        KERNEL_DEVICES[cls] = fn
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
    for base in cls.__mro__:
        fn = KERNEL_DEVICES.get(base)
        if fn is None:
            continue
        # the adapter encodes base's physics: every physics method must still be base's own,
        # except that the generic affine adapter reads _affine_dir/_mult_noise through the device
        free = ("_affine_dir", "_mult_noise") if base is AffineStepDevice else ()
        same = all(getattr(cls, name, None) is getattr(base, name, None) for name in _PHYSICS if name not in free)
        return fn if same else None
    return None


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
    return t.detach().to(dtype).contiguous().numpy()


def _seed(generator: torch.Generator) -> int:
    return int(torch.randint(0, 2**63 - 1, (1,), generator=generator, device=generator.device).item())


def kernel_update_(
    device: Device, state: DeviceState, x: torch.Tensor, d: torch.Tensor, lr: float, cfg: UpdateConfig,
    generator: torch.Generator, dw_min: float,
) -> tuple[np.ndarray, int, int, str]:
    """Pulsed update in place with the fused kernel; returns (BL per sample, pulses, max count, kernel)."""
    params = kernel_params(device, state)
    dtype = state.w.dtype
    xn = x.detach().to(torch.float64).contiguous().numpy()
    dn = d.detach().to(torch.float64).contiguous().numpy()
    m, n_in = xn.shape
    n_out = dn.shape[1]
    mode = _COUNT_MODES[cfg.pulse_type]
    fixed_long = 0
    if not cfg.update_bl_management and not cfg.fixed_bl and lr > dw_min * cfg.desired_bl:
        fixed_long = int(math.ceil(lr / dw_min * (1.0 - CEIL_SLACK)))
    max_bl = max(cfg.desired_bl, fixed_long)
    nw = (max_bl + 63) // 64 if mode == _STOCHASTIC else 1
    seed = np.uint64(_seed(generator))

    bl = np.empty(m, np.int64)
    a_sc = np.empty(m, np.float64)
    b_sc = np.empty(m, np.float64)
    total_bl = _plan(xn, dn, float(lr), float(dw_min), int(cfg.desired_bl), bool(cfg.update_bl_management),
                     bool(cfg.update_management), float(cfg.um_grad_scale), fixed_long, bl, a_sc, b_sc)
    if total_bl == 0:
        return bl, 0, 0, "none"
    colbits = np.empty((m, nw, n_in), np.uint64)
    colsgn = np.empty((m, n_in), np.int8)
    colval = np.empty((m, n_in), np.float64)
    colidx = np.empty((m, n_in), np.int64)
    nact = np.empty(m, np.int64)
    rowbits = np.empty((n_out, m, nw), np.uint64)
    rowsgn = np.empty((n_out, m), np.int8)
    rowval = np.empty((n_out, m), np.float64)
    nrow = np.empty(m, np.int64)
    n_pairs = np.uint64((max_bl + 1) // 2)
    draws = (n_in + n_out) * (total_bl if mode == _STOCHASTIC else m)
    trains = _trains_parallel if draws >= PARALLEL_MIN_BITS else _trains_serial
    trains(xn, dn, mode, float(cfg.x_res_implicit), float(cfg.d_res_implicit), seed, n_pairs, bl, a_sc, b_sc,
           colbits, colsgn, colval, colidx, nact, rowbits, rowsgn, rowval, nrow)
    work = int(np.dot(nact, nrow))
    if work == 0:
        return bl, 0, 0, "none"

    w_t = state.w
    w_work = w_t if w_t.is_contiguous() else w_t.contiguous()
    wn_t = state.extra.get("write_noise")
    wn_scale = float(device.write_noise_scale) if wn_t is not None else 0.0
    wn_work = None if wn_t is None else (wn_t if wn_t.is_contiguous() else wn_t.contiguous())
    has_slope = params.b_up is not None
    force_closed = cfg.pulse_application == "closed_form"
    vec_affine = force_closed
    if has_slope and not force_closed and params.sigma == 0:  # closed form exact where no step overshoots
        vec_affine = bool((params.b_up >= -1).all()) and bool((params.b_dn <= 1).all())
    row_pulses = np.zeros(n_out, np.int64)
    row_max = np.zeros(n_out, np.int64)
    parallel = work >= PARALLEL_MIN_WORK
    rows = _rows_parallel if parallel else _rows_serial
    rows(
        w_work.detach().numpy(), _np(params.a_up, dtype), _np(params.b_up, dtype), _np(params.a_dn, dtype),
        _np(params.b_dn, dtype), _np(params.n_up, dtype), _np(params.n_dn, dtype), _np(params.ref, dtype),
        _np(state.w_min, dtype), _np(state.w_max, dtype),
        _np(None, dtype) if wn_work is None else wn_work.detach().numpy(),
        has_slope, params.ref is not None, bool(params.mult), float(params.sigma),
        force_closed, bool(params.const_closed), _small_reversal(params.sigma), vec_affine, wn_scale,
        mode, bl, colbits, colsgn, colval, colidx, nact, rowbits, rowsgn, rowval, seed, row_pulses, row_max,
    )
    if w_work is not w_t:
        w_t.copy_(w_work)
    if wn_work is not None and wn_work is not wn_t:
        wn_t.copy_(wn_work)
    return bl, int(row_pulses.sum()), int(row_max.max()), "parallel" if parallel else "serial"
