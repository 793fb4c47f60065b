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

# count modes of the row kernel
_STOCHASTIC, _IMPLICIT, _MEAN = 0, 1, 2
_COUNT_MODES = {"stochastic_compressed": _STOCHASTIC, "deterministic_implicit": _IMPLICIT, "mean_count": _MEAN}

if HAVE_NUMBA:
    from numba import njit, prange
    from numba.core import types
    from numba.extending import intrinsic

    from analogkit.periphery.kernels import _GOLDEN, _candidate, _mix64, _normal_slow, _unit53

    _LO32 = np.uint64(0xFFFFFFFF)
    _SEED_COLS = np.uint64(0x6A09E667F3BCC909)
    _SEED_ROWS = np.uint64(0xBB67AE8584CAA73B)
    _SEED_NOISE = np.uint64(0x3C6EF372FE94F82B)
    _SLOW = np.uint64(0xD1B54A32D192ED03)

    @intrinsic
    def _popcount(typingctx, x):
        """Number of set bits of a uint64 (LLVM ctpop: one POPCNT instruction)."""
        sig = types.uint64(types.uint64)

        def codegen(context, builder, signature, args):
            return builder.ctpop(args[0])

        return sig, codegen

    @njit(inline="always", cache=True)
    def _train_word(key, thr, t0, t1):
        """Slots t0..t1−1 (t0 even, t1 − t0 <= 64) of the train ``key`` as bits 0..t1−t0−1 of a word:
        each set independently with probability thr/2³²; one 64-bit draw gives two slots."""
        width = t1 - t0
        if thr >= np.uint64(1) << np.uint64(32):  # p = 1: every slot fires
            if width >= 64:
                return ~np.uint64(0)
            return (np.uint64(1) << np.uint64(width)) - np.uint64(1)
        word = np.uint64(0)
        for h in range((width + 1) >> 1):
            v = _mix64(key + np.uint64((t0 >> 1) + h + 1) * _GOLDEN)
            if (v & _LO32) < thr:
                word |= np.uint64(1) << np.uint64(2 * h)
            if 2 * h + 1 < width and (v >> np.uint64(32)) < thr:
                word |= np.uint64(1) << np.uint64(2 * h + 1)
        return word

    @njit(cache=True)
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

    @njit(inline="always", cache=True)
    def _sample_trains(n, x, d, mode, x_res, d_res, seed, bl, a_sc, b_sc,
                       colbits, colval, colidx, colsgn, nact, rowbits, rowval, rowsgn, nrow):
        """Row and column trains of sample ``n`` (bits, or quantised probabilities); compacted columns."""
        n_in, n_out = x.shape[1], d.shape[1]
        nw = rowbits.shape[2]
        b = bl[n]
        nact[n] = 0
        nrow[n] = 0
        if b == 0:
            for i in range(n_out):
                rowval[i, n] = 0.0
                for k in range(rowbits.shape[2]):
                    rowbits[i, n, k] = np.uint64(0)
            return
        a_n = a_sc[n]
        b_n = b_sc[n]
        r_x = x_res if x_res > 0 else 1.0 / b
        r_d = d_res if d_res > 0 else 1.0 / b
        two32 = 4294967296.0
        n_cols = np.uint64(n_in)
        n_rows = np.uint64(n_out)
        cnt = 0
        for j in range(n_in):
            xv = x[n, j]
            p = min(a_n * abs(xv), 1.0)
            if not p > 0.0:
                continue
            if mode == _STOCHASTIC:
                key = _mix64(seed ^ _SEED_COLS ^ ((np.uint64(n) * n_cols + np.uint64(j)) * _GOLDEN))
                thr = np.uint64(p * two32)
                fired = False
                for wd in range(nw):
                    t0 = 64 * wd
                    word = _train_word(key, thr, t0, min(b, t0 + 64)) if t0 < b else np.uint64(0)
                    colbits[n, cnt, wd] = word
                    fired = fired or word != np.uint64(0)
                if not fired:
                    continue
            elif mode == _IMPLICIT:
                p = min(np.rint(p / r_x) * r_x, 1.0)
                if not p > 0.0:
                    continue
            colval[n, cnt] = p
            colidx[n, cnt] = j
            colsgn[n, cnt] = 1 if xv > 0 else -1
            cnt += 1
        nact[n] = cnt
        rows = 0
        for i in range(n_out):
            dv = d[n, i]
            q = min(b_n * abs(dv), 1.0)
            rowsgn[i, n] = 1 if dv > 0 else -1
            live = q > 0.0
            if mode == _STOCHASTIC:
                key = _mix64(seed ^ _SEED_ROWS ^ ((np.uint64(n) * n_rows + np.uint64(i)) * _GOLDEN))
                thr = np.uint64(q * two32)
                fired = False
                for wd in range(nw):
                    t0 = 64 * wd
                    word = _train_word(key, thr, t0, min(b, t0 + 64)) if (live and t0 < b) else np.uint64(0)
                    rowbits[i, n, wd] = word
                    fired = fired or word != np.uint64(0)
                live = fired
            elif mode == _IMPLICIT and live:
                q = min(np.rint(q / r_d) * r_d, 1.0)
                live = q > 0.0
            rowval[i, n] = q if live else 0.0
            if live:
                rows += 1
        nrow[n] = rows if cnt > 0 else 0

    @njit(cache=True)
    def _trains_serial(x, d, mode, x_res, d_res, seed, bl, a_sc, b_sc,
                       colbits, colval, colidx, colsgn, nact, rowbits, rowval, rowsgn, nrow):
        for n in range(x.shape[0]):
            _sample_trains(n, x, d, mode, x_res, d_res, seed, bl, a_sc, b_sc,
                           colbits, colval, colidx, colsgn, nact, rowbits, rowval, rowsgn, nrow)

    @njit(parallel=True, cache=True)
    def _trains_parallel(x, d, mode, x_res, d_res, seed, bl, a_sc, b_sc,
                         colbits, colval, colidx, colsgn, nact, rowbits, rowval, rowsgn, nrow):
        for n in prange(x.shape[0]):
            _sample_trains(n, x, d, mode, x_res, d_res, seed, bl, a_sc, b_sc,
                           colbits, colval, colidx, colsgn, nact, rowbits, rowval, rowsgn, nrow)

    _ZX = _pk.ZIG_X
    _ZR = _pk.ZIG_R

    @njit(inline="always", cache=True)
    def _gauss(base, ctr, slow):
        """N(0, 1) draw ``ctr`` of the row stream ``base`` (ziggurat; rare rejections on the stream
        ``slow``). The tables are globals: array arguments would cost reference counting per call."""
        z, u, layer = _candidate(base, ctr, _ZX)
        if abs(u) >= _ZR[layer]:
            z, slow = _normal_slow(slow, u, layer, _ZX, _ZR)
        return z, slow

    @njit(cache=True)
    def _row_block(
        i0, i1, w, a_up, b_up, a_dn, b_dn, n_up, n_dn, ref, w_min, w_max, wn,
        has_slope, has_ref, mult, sigma, force_closed, const_closed, small_rev, wn_scale,
        mode, bl, colbits, colval, colidx, colsgn, nact, rowbits, rowval, rowsgn, seed,
        row_pulses, row_max,
    ):
        """Rows i0..i1−1: for each row, all samples in order: counts, then pulses applied to w[i, :]."""
        n_in = w.shape[1]
        nw = rowbits.shape[2]
        track = wn_scale > 0.0
        touched = np.zeros(n_in if track else 1, np.bool_)
        for i in range(i0, i1):
            base = _mix64(seed ^ _SEED_NOISE ^ (np.uint64(i) * _GOLDEN))
            slow = _mix64(base ^ _SLOW)
            ctr = 0
            pulses = 0
            cmax = 0
            for n in range(bl.shape[0]):
                b = bl[n]
                if b == 0:
                    continue
                rv = rowval[i, n]
                rb0 = np.uint64(0)
                if mode == _STOCHASTIC:
                    rb0 = rowbits[i, n, 0]
                    any_bit = rb0 != np.uint64(0)
                    for k in range(1, nw):
                        any_bit = any_bit or rowbits[i, n, k] != np.uint64(0)
                    if not any_bit:
                        continue
                elif not rv > 0.0:
                    continue
                rs = rowsgn[i, n]
                bf = float(b)
                for k in range(nact[n]):
                    if mode == _STOCHASTIC:
                        c = int(_popcount(rb0 & colbits[n, k, 0]))
                        for h in range(1, nw):
                            c += int(_popcount(rowbits[i, n, h] & colbits[n, k, h]))
                    elif mode == _IMPLICIT:
                        c = int(np.rint(bf * rv * colval[n, k]))
                    else:
                        mu = bf * rv * colval[n, k]
                        fl = math.floor(mu)
                        u = _unit53(_mix64(base + np.uint64(ctr + 1) * _GOLDEN))
                        ctr += 1
                        c = int(fl) + (1 if u < mu - fl else 0)
                    if c == 0:
                        continue
                    j = colidx[n, k]
                    up = rs != colsgn[n, k]
                    pulses += c
                    cmax = max(cmax, c)
                    if track:
                        touched[j] = True
                    w0 = float(w[i, j])
                    lo = w_min[i, j]
                    hi = w_max[i, j]
                    if up:
                        sg = 1.0
                        av = a_up[i, j]
                        nv = n_up[i, j]
                    else:
                        sg = -1.0
                        av = a_dn[i, j]
                        nv = n_dn[i, j]
                    if not has_slope:
                        std1 = sigma * (abs(av) if mult else abs(nv))  # c2c std of one pulse
                        if force_closed or const_closed:
                            new = w0 + sg * c * av
                            if sigma > 0.0:
                                z, slow = _gauss(base, ctr, slow)
                                ctr += 1
                                new += std1 * math.sqrt(c) * z
                            w[i, j] = min(max(new, lo), hi)
                        else:
                            wv = w0
                            for t in range(c):
                                z, slow = _gauss(base, ctr, slow)
                                ctr += 1
                                wv = min(max(wv + sg * av + std1 * z, lo), hi)
                            w[i, j] = wv
                        continue
                    bv = b_up[i, j] if up else b_dn[i, j]
                    rr = ref[i, j] if has_ref else 0.0
                    slope = sg * bv
                    if force_closed or (sigma == 0.0 and slope >= -1.0) or (slope == 0.0 and small_rev):
                        d0 = sg * (av + bv * (w0 + rr))
                        cc = 1.0 + slope
                        geom = 0.0
                        cp = 1.0
                        for t in range(c):
                            geom += cp
                            cp *= cc
                        new = w0 + d0 * geom
                        if sigma > 0.0:
                            c2 = cc * cc
                            acc = 0.0
                            cp2 = 1.0
                            if mult:
                                q = c2 + (sigma * slope) ** 2
                                for t in range(c):
                                    acc = acc * q + cp2
                                    cp2 *= c2
                                var = sigma * sigma * d0 * d0 * acc
                            else:
                                for t in range(c):
                                    acc += cp2
                                    cp2 *= c2
                                var = sigma * sigma * nv * nv * acc
                            z, slow = _gauss(base, ctr, slow)
                            ctr += 1
                            new += math.sqrt(max(var, 0.0)) * z
                        w[i, j] = min(max(new, lo), hi)
                    else:
                        wv = w0
                        add_std = sigma * abs(nv)
                        for t in range(c):
                            m = sg * (av + bv * (wv + rr))
                            std = sigma * abs(m) if mult else add_std
                            z, slow = _gauss(base, ctr, slow)
                            ctr += 1
                            wv = min(max(wv + m + std * z, lo), hi)
                        w[i, j] = wv
            if track:
                for j in range(n_in):
                    if touched[j]:
                        touched[j] = False
                        z, slow = _gauss(base, ctr, slow)
                        ctr += 1
                        wn[i, j] = wn_scale * z
            row_pulses[i] = pulses
            row_max[i] = cmax

    @njit(cache=True)
    def _rows_serial(w, a_up, b_up, a_dn, b_dn, n_up, n_dn, ref, w_min, w_max, wn,
        has_slope, has_ref, mult, sigma, force_closed, const_closed, small_rev, wn_scale,
        mode, bl, colbits, colval, colidx, colsgn, nact, rowbits, rowval, rowsgn, seed,
        row_pulses, row_max):
        _row_block(0, w.shape[0], w, a_up, b_up, a_dn, b_dn, n_up, n_dn, ref, w_min, w_max, wn,
        has_slope, has_ref, mult, sigma, force_closed, const_closed, small_rev, wn_scale,
        mode, bl, colbits, colval, colidx, colsgn, nact, rowbits, rowval, rowsgn, seed,
        row_pulses, row_max)

    #: rows per block of the parallel kernel (amortises the call; several blocks per thread)
    _BLOCK = 8

    @njit(parallel=True, cache=True)
    def _rows_parallel(w, a_up, b_up, a_dn, b_dn, n_up, n_dn, ref, w_min, w_max, wn,
        has_slope, has_ref, mult, sigma, force_closed, const_closed, small_rev, wn_scale,
        mode, bl, colbits, colval, colidx, colsgn, nact, rowbits, rowval, rowsgn, seed,
        row_pulses, row_max):
        n_blocks = (w.shape[0] + _BLOCK - 1) // _BLOCK
        for blk in prange(n_blocks):
            _row_block(blk * _BLOCK, min(w.shape[0], (blk + 1) * _BLOCK), w, a_up, b_up, a_dn, b_dn, n_up, n_dn, ref, w_min, w_max, wn,
        has_slope, has_ref, mult, sigma, force_closed, const_closed, small_rev, wn_scale,
        mode, bl, colbits, colval, colidx, colsgn, nact, rowbits, rowval, rowsgn, seed,
        row_pulses, row_max)


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
    colbits = np.empty((m, n_in, nw), np.uint64)
    colval = np.empty((m, n_in), np.float64)
    colidx = np.empty((m, n_in), np.int32)
    colsgn = np.empty((m, n_in), np.int8)
    nact = np.empty(m, np.int64)
    rowbits = np.empty((n_out, m, nw), np.uint64)
    rowval = np.empty((n_out, m), np.float64)
    rowsgn = np.empty((n_out, m), np.int8)
    nrow = np.empty(m, np.int64)
    draws = (n_in + n_out) * (total_bl if mode == _STOCHASTIC else m)
    trains = _trains_parallel if draws >= PARALLEL_MIN_BITS else _trains_serial
    trains(xn, dn, mode, float(cfg.x_res_implicit), float(cfg.d_res_implicit), seed, bl, a_sc, b_sc,
           colbits, colval, colidx, colsgn, nact, rowbits, rowval, rowsgn, nrow)
    work = int(np.dot(nact, nrow))
    if work == 0:
        return bl, 0, 0, "none"

    w_t = state.w
    w_work = w_t if w_t.is_contiguous() else w_t.contiguous()
    wn_t = state.extra.get("write_noise")
    wn_scale = float(device.write_noise_scale) if wn_t is not None else 0.0
    wn_work = None if wn_t is None else (wn_t if wn_t.is_contiguous() else wn_t.contiguous())
    has_slope = params.b_up is not None
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
        cfg.pulse_application == "closed_form", bool(params.const_closed), _small_reversal(params.sigma), wn_scale,
        mode, bl, colbits, colval, colidx, colsgn, nact, rowbits, rowval, rowsgn, seed,
        row_pulses, row_max,
    )
    if w_work is not w_t:
        w_t.copy_(w_work)
    if wn_work is not None and wn_work is not wn_t:
        wn_t.copy_(wn_work)
    return bl, int(row_pulses.sum()), int(row_max.max()), "parallel" if parallel else "serial"
