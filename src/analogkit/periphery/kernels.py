"""Fused CPU kernel for the output stage of a read: noise → ADC → saturation flag → rescale.

The output stage of every analog read touches each output once: add Gaussian output noise,
quantise, clip, note whether the ADC saturated, and scale back to digital units. In plain PyTorch
that is six passes over memory and a Gaussian draw from the CPU Mersenne Twister, which costs as
much as the matrix product itself. With numba (a pip-installable JIT, no compiler needed) the
stage is one parallel pass with a fast Gaussian generator; on other devices, or when numba is
missing or ``ANALOGKIT_KERNELS=torch`` is set, the PyTorch path in :mod:`analogkit.periphery.mvm`
is used. Both give the same statistics (tested); they do not give the same draws.

Random numbers: every call takes one 63-bit seed from the tile's ``torch.Generator``, so the
stream is owned by the tile and reproducible from its state. Row ``r`` of the call gets its own
counter-based stream started at ``mix(seed, r)``: draw k is the SplitMix64 finaliser of
``base + k·γ`` (Steele, Lea & Flood 2014, "Fast splittable pseudorandom number generators"), so
results do not depend on the number of threads.

Gaussians come in two forms:

* **Rows** (:func:`row_normals`, the bulk of all draws): the Box–Muller transform (Box & Muller
  1958), z₁ = ρ·cos θ, z₂ = ρ·sin θ with ρ = √(−2 ln u₁), θ = 2π u₂, computed branch-free so that
  the loop vectorises (AVX2/AVX-512). One 64-bit draw makes a pair: ``u₁`` is the midpoint of the
  cell of its top 40 bits (ρ reaches 7.54σ; a normal exceeds that with probability 5e-14), θ takes
  the quadrant and 22 bits from the low 24. The integer steps (exponent by count-leading-zeros,
  quadrant) run in 32-bit arithmetic; the logarithm (the series ln m = 2 artanh((m−1)/(m+1)) on
  m ∈ [1/√2, √2), its numerator exact from the integer) and cos/sin (Taylor on [−π/4, π/4] and a
  quadrant rotation) are polynomials in float32 arithmetic, accurate to a few float32 ulps
  (relative error < 1e-6, tested), i.e. N(0, 1) at float32 resolution, which is the resolution of
  the weights and activations they perturb. About 0.37 ns per draw on one core, 5× the
  ziggurat's vectorised pass (measured; its table gathers and rejections do not vectorise).
* **Scalar** single draws (``_gauss`` in the update kernel, where a loop needs one value at a
  time): the ziggurat method with 256 layers in the formulation of Doornik 2005 ("An improved
  ziggurat method to generate normal random samples"), which draws the layer index and the value
  from independent bits and samples the tail exactly (Marsaglia 1964): exact N(0, 1) up to the
  53-bit resolution of the uniforms.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from analogkit._jit_cache import drop_stale_cache

try:  # numba is a dependency, but keep the library importable without it
    from llvmlite import ir
    from numba import njit, prange
    from numba.core import cgutils
    from numba.core import types as _nb_types
    from numba.extending import intrinsic

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only where numba is absent
    HAVE_NUMBA = False


def _ziggurat_tables(layers: int = 256, r: float = 3.6541528853610088, v: float = 4.92867323399e-3):
    """Layer edges x_i, ratios x_{i+1}/x_i and densities exp(−x_i²/2) of the 256-layer normal
    ziggurat (Marsaglia & Tsang 2000, "The ziggurat method for generating random variables",
    constants r and v for 256 layers; construction as in Doornik 2005, Sec. 3)."""
    x = np.zeros(layers + 1)
    f = math.exp(-0.5 * r * r)
    x[0] = v / f
    x[1] = r
    x[layers] = 0.0
    for i in range(2, layers):
        x[i] = math.sqrt(-2.0 * math.log(v / x[i - 1] + f))
        f = math.exp(-0.5 * x[i] * x[i])
    ratio = np.array([x[i + 1] / x[i] for i in range(layers)])
    return x, ratio, np.exp(-0.5 * x * x)


ZIG_X, ZIG_R, ZIG_F = _ziggurat_tables()
ZIG_TAIL = 3.6541528853610088
ZIG_MASK = 0xFF


def kernels_enabled(t: torch.Tensor) -> bool:
    """Whether the fused kernel applies to ``t`` (CPU float32/float64, numba present, not disabled)."""
    return (
        HAVE_NUMBA
        and os.environ.get("ANALOGKIT_KERNELS", "numba") != "torch"
        and t.device.type == "cpu"
        and t.dtype in (torch.float32, torch.float64)
    )


if HAVE_NUMBA:
    _GOLDEN = np.uint64(0x9E3779B97F4A7C15)
    _M1 = np.uint64(0xBF58476D1CE4E5B9)
    _M2 = np.uint64(0x94D049BB133111EB)

    @njit(inline="always", cache=True)
    def _mix64(z):
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))

    @njit(inline="always", cache=True)
    def _unit53(bits):
        return (np.float64(bits >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)

    _ZX = ZIG_X
    _ZR = ZIG_R

    @njit(cache=True, error_model="numpy")
    def _normal_slow(state, u, i):
        """Rejection part of the ziggurat (Doornik 2005, Alg. ZIGNOR), on its own stream ``state``.

        Entered with the first candidate (u, i) that failed the rectangle test (≈1.5 % of draws).
        The tables are read as globals: array arguments cost reference counting on every call.
        """
        zx = _ZX
        zr = _ZR
        while True:
            if i == 0:  # tail beyond R (Marsaglia 1964)
                while True:
                    state = state + _GOLDEN
                    a = _unit53(_mix64(state))
                    state = state + _GOLDEN
                    b = _unit53(_mix64(state))
                    xt = math.log(a) / ZIG_TAIL
                    yt = math.log(b)
                    if -2.0 * yt >= xt * xt:
                        break
                return (xt - ZIG_TAIL if u < 0 else ZIG_TAIL - xt), state
            x = u * zx[i]  # wedge: accept under the density (one exp, tabulated layer densities)
            state = state + _GOLDEN
            if ZIG_F[i + 1] + _unit53(_mix64(state)) * (ZIG_F[i] - ZIG_F[i + 1]) < math.exp(-0.5 * x * x):
                return x, state
            state = state + _GOLDEN
            bits = _mix64(state)
            i = np.int64(bits & np.uint64(ZIG_MASK))
            u = 2.0 * _unit53(bits) - 1.0
            if abs(u) < zr[i]:
                return u * zx[i], state

    @njit(inline="always", cache=True)
    def _candidate(base, k, zx):
        """Counter-based ziggurat candidate k of a row stream: (z = u·x_i, u, i)."""
        bits = _mix64(base + np.uint64(k + 1) * _GOLDEN)
        i = np.int64(bits & np.uint64(ZIG_MASK))
        u = 2.0 * _unit53(bits) - 1.0
        return u * zx[i], u, i

    _F32 = np.float32

    @intrinsic
    def _box_muller_inputs(typingctx, bits):
        """The integer part of a Box–Muller pair from one 64-bit draw, in 32-bit LLVM arithmetic
        (numba would widen it to 64-bit lanes, half as many per vector).

        Radius: u = (top 40 bits + ½)·2⁻⁴⁰ ∈ [2⁻⁴¹, 1 − 2⁻⁴¹]. With t its leading 32 bits (top bit
        set, a funnel shift past the leading zeros lz) and m = t/2³¹ ∈ [1, 2), u = m·2^(−1−lz); for
        m > √2 the pair m/2, e + 1 is used instead, so that m ∈ [1/√2, √2). Returned: the numerator
        m − 1 (or m/2 − 1) from t as an integer plus the bits shifted past it (so that it keeps
        float32 precision next to u = 1), the denominator m + 1 (or m/2 + 1), both scaled by 2³¹
        (2³²), and the exponent e = −1 − lz (or −lz); ln u = e·ln 2 + ln m. Angle: the low 24
        bits, the quadrant q from bits 22–23 and f = φ/(π/2) ∈ (−½, ½) from the midpoint of the cell
        of bits 0–21 read as a signed 22-bit integer; returned as f and the rotation flags (swap
        cos/sin, negate the first, negate the second) of q = 0: (c, s), 1: (−s, c), 2: (−c, −s),
        3: (s, −c).
        """
        f32, flag = _nb_types.float32, _nb_types.boolean
        sig = _nb_types.Tuple((f32, f32, f32, f32, flag, flag, flag))(_nb_types.uint64)

        def codegen(context, builder, signature, args):
            i32, flt = ir.IntType(32), ir.FloatType()

            def k(v):
                return ir.Constant(i32, v)

            draw = args[0]
            hi = builder.trunc(builder.lshr(draw, ir.Constant(ir.IntType(64), 32)), i32)
            lo = builder.trunc(draw, i32)
            low8 = builder.or_(builder.and_(lo, k(0xFF000000)), k(1 << 23))  # u's last 8 bits and its half cell
            no_zero = ir.Constant(ir.IntType(1), 0)
            lz_hi = builder.ctlz(hi, no_zero)
            fshl = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i32, [i32, i32, i32]),
                                                  "llvm.fshl.i32")
            t_hi = builder.call(fshl, [hi, low8, lz_hi])  # (hi:low8) << lz_hi, its top 32 bits
            lz_lo = builder.ctlz(low8, no_zero)
            hi_zero = builder.icmp_unsigned("==", hi, k(0))  # (u < 2⁻³²)
            t = builder.select(hi_zero, builder.shl(low8, lz_lo), t_hi)
            lz = builder.select(hi_zero, builder.add(lz_lo, k(32)), lz_hi)
            # the bits shifted past t (none if hi = 0): (hi:low8) << lz = t·2³² + rest
            rest = builder.select(hi_zero, k(0), builder.shl(low8, lz_hi))
            big = builder.icmp_unsigned(">", t, k(0xB504F333))  # m > √2 (⌊√2·2³¹⌋)
            # numerator, exact to float32 also for u next to 1: big: m/2 − 1 = (t − 2³² + rest/2³²)/2³²
            # (t − 2³² is t as a signed int32); else m − 1 = (t − 2³¹ + rest/2³²)/2³¹
            num = builder.fadd(builder.sitofp(builder.select(big, t, builder.sub(t, k(1 << 31))), flt),
                               builder.fmul(builder.uitofp(rest, flt), ir.Constant(flt, 2.0**-32)))
            den = builder.fadd(builder.uitofp(t, flt),
                               builder.select(big, ir.Constant(flt, 2.0**32), ir.Constant(flt, 2.0**31)))
            e = builder.sitofp(builder.sub(builder.select(big, k(0), k(-1)), lz), flt)
            top = builder.shl(lo, k(8))  # the angle's 24 bits at the top of a word
            q = builder.lshr(top, k(30))
            cell = builder.or_(builder.shl(top, k(2)), k(1 << 9))  # 22 bits and a half cell, signed
            f = builder.fmul(builder.sitofp(cell, flt), ir.Constant(flt, 2.0**-32))
            swap = builder.icmp_unsigned("!=", builder.and_(q, k(1)), k(0))
            neg_first = builder.icmp_unsigned("==", builder.and_(builder.add(q, k(1)), k(2)), k(2))  # q = 1, 2
            neg_second = builder.icmp_unsigned(">=", q, k(2))
            return context.make_tuple(builder, signature.return_type, [num, den, e, f, swap, neg_first, neg_second])

        return sig, codegen

    @njit(inline="always", cache=True, error_model="numpy", fastmath={"contract"})
    def _normal_pair(bits):
        """One Box–Muller pair (ρ cos θ, ρ sin θ) from one 64-bit draw (:func:`_box_muller_inputs`):
        ρ = √(−2 ln u) with ln m = 2 artanh(s), s = (m − 1)/(m + 1), |s| <= 0.1716, summed as
        2(s + s³/3 + … + s¹¹/11) (truncation < 1e-10); cos/sin of φ ∈ [−π/4, π/4] by Taylor
        polynomials to x¹⁰ and x⁹ (truncation < 3e-8), rotated by the quadrant. u ∈ [2⁻⁴¹, 1 − 2⁻⁴¹],
        so ρ <= √(82 ln 2) = 7.54."""
        num, den, e, f, swap, neg_first, neg_second = _box_muller_inputs(bits)
        s = num / den
        s2 = s * s
        p = _F32(2.0 / 11.0)
        p = p * s2 + _F32(2.0 / 9.0)
        p = p * s2 + _F32(2.0 / 7.0)
        p = p * s2 + _F32(2.0 / 5.0)
        p = p * s2 + _F32(2.0 / 3.0)
        p = p * s2 + _F32(2.0)
        rho = math.sqrt(max(_F32(-2.0) * (e * _F32(0.6931471805599453) + s * p), _F32(0.0)))
        x = f * _F32(1.5707963267948966)
        x2 = x * x
        sp = _F32(1.0 / 362880.0)
        sp = sp * x2 - _F32(1.0 / 5040.0)
        sp = sp * x2 + _F32(1.0 / 120.0)
        sp = sp * x2 - _F32(1.0 / 6.0)
        sn = x + x * x2 * sp
        cp = _F32(-1.0 / 3628800.0)
        cp = cp * x2 + _F32(1.0 / 40320.0)
        cp = cp * x2 - _F32(1.0 / 720.0)
        cp = cp * x2 + _F32(1.0 / 24.0)
        cp = cp * x2 - _F32(0.5)
        cs = _F32(1.0) + x2 * cp
        a = sn if swap else cs
        b = cs if swap else sn
        return (-a if neg_first else a) * rho, (-b if neg_second else b) * rho

    @njit(inline="always", cache=True, error_model="numpy", fastmath={"contract"})
    def row_normals(z, base):
        """Fill ``z`` with N(0, 1) draws (Box–Muller, see the module docstring) from the row stream
        ``base``: pair k is draw k + 1 of ``base``, so a caller that advances ``base`` by len(z)
        draws never reuses one. Branch-free; it vectorises only inside callers compiled with
        ``error_model="numpy"`` (measured 0.37 vs 4.4 ns per draw), as all of this package's are."""
        n = z.shape[0]
        for k in range(n >> 1):
            a, b = _normal_pair(_mix64(base + np.uint64(k + 1) * _GOLDEN))
            z[2 * k] = a
            z[2 * k + 1] = b
        if n & 1:
            z[n - 1] = _normal_pair(_mix64(base + np.uint64((n + 1) >> 1) * _GOLDEN))[0]

    @njit(inline="always", cache=True, error_model="numpy")
    def _output_row(y, r, scale, sigma, step, bound, sto_round, seed):
        """Output stage of one row; returns whether the ADC saturated."""
        cols = y.shape[1]
        inv_step = 1.0 / step if step > 0 else 0.0
        base = _mix64(np.uint64(seed) ^ (np.uint64(r) * _GOLDEN))
        z = np.zeros(cols, np.float32)
        if sigma > 0:
            row_normals(z, base)
        dither_base = _mix64(base ^ np.uint64(0x8CB92BA72F3D8DD7))
        n_sat = 0
        for k in range(cols):
            v = y[r, k] + sigma * z[k]
            if step > 0:
                if sto_round:
                    v = np.rint(v * inv_step + _unit53(_mix64(dither_base + np.uint64(k + 1) * _GOLDEN)) - 0.5) * step
                else:
                    v = np.rint(v * inv_step) * step
            v = min(max(v, -bound), bound)
            n_sat += abs(v) >= bound
            y[r, k] = v * scale
        return n_sat > 0

    # Serial version for small calls: a second thread pool next to PyTorch's spinning OpenMP
    # threads costs more than it gains below about half a million outputs (measured).
    @njit(cache=True, error_model="numpy")
    def _output_stage(y, row_scale, sigma, step, bound, sto_round, seed, saturated):
        for r in range(y.shape[0]):
            saturated[r] = _output_row(y, r, row_scale[r], sigma, step, bound, sto_round, seed)

    @njit(parallel=True, cache=True, error_model="numpy")
    def _output_stage_parallel(y, row_scale, sigma, step, bound, sto_round, seed, saturated):
        for r in prange(y.shape[0]):
            saturated[r] = _output_row(y, r, row_scale[r], sigma, step, bound, sto_round, seed)

    @njit(inline="always", cache=True, error_model="numpy")
    def gauss_scalar(base, ctr, slow):
        """One N(0, 1) draw, candidate ``ctr`` + 1 of the row stream ``base`` (ziggurat); rare
        rejections continue on the stream ``slow``. Returns (z, slow)."""
        bits = _mix64(base + np.uint64(ctr + 1) * _GOLDEN)
        layer = np.int64(bits & np.uint64(ZIG_MASK))
        u = 2.0 * _unit53(bits) - 1.0
        z = u * _ZX[layer]
        if abs(u) >= _ZR[layer]:
            z, slow = _normal_slow(slow, u, layer)
        return z, slow

    @njit(parallel=True, cache=True, error_model="numpy")
    def _fill_normal(out, seed, scalar):
        rows, cols = out.shape
        for r in prange(rows):
            base = _mix64(np.uint64(seed) ^ (np.uint64(r) * _GOLDEN))
            if scalar:
                slow = _mix64(base ^ np.uint64(0xD1B54A32D192ED03))
                for k in range(cols):
                    out[r, k], slow = gauss_scalar(base, k, slow)
            else:
                row_normals(out[r], base)

    drop_stale_cache(_fill_normal)  # before any kernel of this module runs (see analogkit._jit_cache)


PARALLEL_MIN_ELEMENTS = 1 << 19


def _seed(gen: torch.Generator | None, device: torch.device) -> int:
    return int(torch.randint(0, 2**63 - 1, (1,), generator=gen, device=device if gen is None else gen.device).item())


def output_stage_(
    y: torch.Tensor,
    row_scale: torch.Tensor,
    sigma: float,
    step: float,
    bound: float,
    sto_round: bool,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """In place on ``y`` viewed as (rows, cols): ``y ← clip(Q(y + σξ), ±bound) · row_scale``.

    Returns a bool tensor (rows,) marking rows in which the ADC saturated (before scaling).
    ``y`` must be contiguous; ``row_scale`` has one entry per row.
    """
    y2 = y.view(-1, y.shape[-1])
    saturated = torch.empty(y2.shape[0], dtype=torch.bool)
    kernel = _output_stage_parallel if y2.numel() >= PARALLEL_MIN_ELEMENTS else _output_stage
    kernel(
        y2.numpy(), row_scale.reshape(-1).to(y.dtype).contiguous().numpy(), float(sigma), float(step),
        float(bound), bool(sto_round), _seed(generator, y.device), saturated.numpy(),
    )
    return saturated


def standard_normal(
    shape: tuple[int, ...], generator: torch.Generator | None, dtype: torch.dtype = torch.float32, method: str = "rows",
) -> torch.Tensor:
    """N(0, 1) samples from the kernels' generators (CPU), to test their statistics.

    ``method``: ``"rows"`` (vectorised Box–Muller, :func:`row_normals`) or ``"scalar"`` (ziggurat
    single draws, :func:`gauss_scalar`).
    """
    if method not in ("rows", "scalar"):
        raise ValueError(f"standard_normal: method {method!r} is not allowed; use 'rows' or 'scalar'")
    out = torch.empty(shape, dtype=dtype)
    _fill_normal(out.view(-1, shape[-1]).numpy(), _seed(generator, out.device), method == "scalar")
    return out
