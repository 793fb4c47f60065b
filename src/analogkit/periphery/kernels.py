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
SplitMix64 stream (Steele, Lea & Flood 2014, "Fast splittable pseudorandom number generators")
started at ``mix(seed, r)``, so results do not depend on the number of threads. Gaussians come
from the ziggurat method with 256 layers in the formulation of Doornik 2005 ("An improved
ziggurat method to generate normal random samples"), which draws the layer index and the value
from independent bits and samples the tail exactly (Marsaglia 1964): exact N(0, 1) up to the
53-bit resolution of the uniforms.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

try:  # numba is a dependency, but keep the library importable without it
    from numba import njit, prange

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

    @njit(cache=True)
    def _normal_slow(state, u, i, zx, zr):
        """Rejection part of the ziggurat (Doornik 2005, Alg. ZIGNOR), on its own stream ``state``.

        Entered with the first candidate (u, i) that failed the rectangle test (≈0.6 % of draws).
        """
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

    @njit(inline="always", cache=True)
    def _row_normals(z, rejected, base, zx, zr):
        """Fill ``z`` with N(0, 1) draws from the row stream ``base``: a branch-free (vectorisable)
        pass over the rectangle test, then the rare rejections (≈0.6 %) on a second stream."""
        cols = z.shape[0]
        n_rejected = 0
        for k in range(cols):
            zk, u, i = _candidate(base, k, zx)
            z[k] = zk
            bad = abs(u) >= zr[i]
            rejected[k] = bad
            n_rejected += bad
        if n_rejected:
            state2 = _mix64(base ^ np.uint64(0xD1B54A32D192ED03))
            for k in range(cols):
                if rejected[k]:
                    zk, u, i = _candidate(base, k, zx)
                    z[k], state2 = _normal_slow(state2, u, i, zx, zr)

    @njit(inline="always", cache=True)
    def _output_row(y, r, scale, sigma, step, bound, sto_round, seed, zx, zr):
        """Output stage of one row; returns whether the ADC saturated."""
        cols = y.shape[1]
        inv_step = 1.0 / step if step > 0 else 0.0
        base = _mix64(np.uint64(seed) ^ (np.uint64(r) * _GOLDEN))
        z = np.zeros(cols)
        if sigma > 0:
            rejected = np.empty(cols, np.bool_)
            _row_normals(z, rejected, base, zx, zr)
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
    @njit(cache=True)
    def _output_stage(y, row_scale, sigma, step, bound, sto_round, seed, saturated, zx, zr):
        for r in range(y.shape[0]):
            saturated[r] = _output_row(y, r, row_scale[r], sigma, step, bound, sto_round, seed, zx, zr)

    @njit(parallel=True, cache=True)
    def _output_stage_parallel(y, row_scale, sigma, step, bound, sto_round, seed, saturated, zx, zr):
        for r in prange(y.shape[0]):
            saturated[r] = _output_row(y, r, row_scale[r], sigma, step, bound, sto_round, seed, zx, zr)

    @njit(parallel=True, cache=True)
    def _fill_normal(out, seed, zx, zr):
        rows, cols = out.shape
        for r in prange(rows):
            z = np.empty(cols)
            rejected = np.empty(cols, np.bool_)
            _row_normals(z, rejected, _mix64(np.uint64(seed) ^ (np.uint64(r) * _GOLDEN)), zx, zr)
            for k in range(cols):
                out[r, k] = z[k]


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
        float(bound), bool(sto_round), _seed(generator, y.device), saturated.numpy(), ZIG_X, ZIG_R,
    )
    return saturated


def standard_normal(shape: tuple[int, ...], generator: torch.Generator | None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """N(0, 1) samples from the kernel's generator (CPU): used to test its statistics."""
    out = torch.empty(shape, dtype=dtype)
    _fill_normal(out.view(-1, shape[-1]).numpy(), _seed(generator, out.device), ZIG_X, ZIG_R)
    return out
