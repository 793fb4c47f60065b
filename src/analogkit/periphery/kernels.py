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
  the quadrant and 22 bits from the low 24. The logarithm (exponent by count-leading-zeros, then
  the series ln m = 2 artanh((m−1)/(m+1)) on m ∈ [1/√2, √2)) and cos/sin (Taylor on [−π/4, π/4]
  and a quadrant rotation) are polynomials in float32 arithmetic, accurate to a few float32 ulps
  (relative error < 1e-6, tested), i.e. N(0, 1) at float32 resolution, which is the resolution of
  the weights and activations they perturb. About 0.33 ns per draw on one core, 6× the
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
    from numba import njit, prange
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

    @intrinsic
    def _clz(typingctx, x):
        """Count of leading zero bits of a uint64 (LLVM ctlz: LZCNT, or VPLZCNTQ when vectorised)."""
        sig = _nb_types.uint64(_nb_types.uint64)

        def codegen(context, builder, signature, args):
            return builder.ctlz(args[0], context.get_constant(_nb_types.boolean, False))

        return sig, codegen

    _F32 = np.float32

    _SQRT2_Q63 = np.uint64(13043817825332782212)  # ⌊√2·2⁶³⌋
    _TWO63 = np.float32(2.0**63)

    @njit(inline="always", cache=True, error_model="numpy", fastmath={"contract"})
    def _radius(bits):
        """ρ = √(−2 ln u) for u = (bits | 1)·2⁻⁶⁴ ∈ (0, 1), float32 arithmetic.

        u = m·2^e with m ∈ [1/√2, √2) from the leading-zero count (T = u's bits shifted to the top,
        m = T/2⁶³ or T/2⁶⁴); ln m = 2 artanh(s) with s = (m − 1)/(m + 1), |s| <= 0.1716, whose
        numerator is taken from the integer T (exact, so ln u keeps float32 relative precision even
        for u next to 1), summed as 2(s + s³/3 + … + s¹¹/11) (truncation < 1e-10)."""
        v = bits | np.uint64(1)
        lz = _clz(v)
        t = v << lz  # top bit set: m = t / 2^63 ∈ [1, 2)
        big = t > _SQRT2_Q63
        # big: m/2 − 1 = −(2^64 − t)/2^64, m/2 + 1 = (t + 2^64)/2^64; else (t − 2^63)/2^63, (t + 2^63)/2^63
        num = -_F32(~t + np.uint64(1)) if big else _F32(t - np.uint64(1 << 63))
        den = _F32(t) + (_TWO63 + _TWO63 if big else _TWO63)
        s = num / den
        e = _F32(np.int64(-1) - np.int64(lz) + (np.int64(1) if big else np.int64(0)))
        s2 = s * s
        p = _F32(2.0 / 11.0)
        p = p * s2 + _F32(2.0 / 9.0)
        p = p * s2 + _F32(2.0 / 7.0)
        p = p * s2 + _F32(2.0 / 5.0)
        p = p * s2 + _F32(2.0 / 3.0)
        p = p * s2 + _F32(2.0)
        neg2log = _F32(-2.0) * (e * _F32(0.6931471805599453) + s * p)
        return math.sqrt(max(neg2log, _F32(0.0)))

    _HALF_CELL = np.uint64(1 << 41)  # half of the angle's 22-bit cell, at the top of a word

    @njit(inline="always", cache=True, error_model="numpy", fastmath={"contract"})
    def _circle(bits):
        """(cos θ, sin θ) for θ uniform on [0, 2π) from the top 24 bits of a word whose other bits
        are 0: quadrant q from the top 2, φ ∈ (−π/4, π/4) from the midpoint of the cell of the next
        22 (Taylor polynomials to x⁹ and x¹⁰: truncation < 3e-8), rotated by q·90°."""
        q = bits >> np.uint64(62)
        # the 22 bits at the top of a signed word, plus half a cell: f = φ/(π/2) ∈ (−½, ½)
        f = _F32(np.int64((bits << np.uint64(2)) | _HALF_CELL)) * _F32(2.0**-64)
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
        swap = (q & np.uint64(1)) != np.uint64(0)  # q = 0: (c, s), 1: (−s, c), 2: (−c, −s), 3: (s, −c)
        a = sn if swap else cs
        b = cs if swap else sn
        neg_a = (q == np.uint64(1)) | (q == np.uint64(2))
        neg_b = q >= np.uint64(2)
        return (-a if neg_a else a), (-b if neg_b else b)

    _RADIUS_BITS = np.uint64(0xFFFFFFFFFF000000)  # the top 40 bits of a draw give u, the low 24 θ
    _RADIUS_HALF = np.uint64(1 << 23)  # the midpoint of u's cell: u = (top 40 bits + ½)·2⁻⁴⁰

    @njit(inline="always", cache=True, error_model="numpy", fastmath={"contract"})
    def _normal_pair(bits):
        """One Box–Muller pair from one 64-bit draw: u from the top 40 bits (cell midpoints, so
        u ∈ [2⁻⁴¹, 1 − 2⁻⁴¹] and ρ ≤ 7.54), θ from the low 24 (see :func:`_circle`)."""
        rho = _radius((bits & _RADIUS_BITS) | _RADIUS_HALF)
        c, s = _circle(bits << np.uint64(40))
        return rho * c, rho * s

    @njit(inline="always", cache=True, error_model="numpy", fastmath={"contract"})
    def row_normals(z, base):
        """Fill ``z`` with N(0, 1) draws (Box–Muller, see the module docstring) from the row stream
        ``base``: pair k is draw k + 1 of ``base``, so a caller that advances ``base`` by len(z)
        draws never reuses one. Branch-free; it vectorises only inside callers compiled with
        ``error_model="numpy"`` (measured 0.33 vs 4.4 ns per draw), as all of this package's are."""
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
