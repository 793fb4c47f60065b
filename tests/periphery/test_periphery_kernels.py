"""The fused output-stage kernel: its Gaussian generator and its agreement with the PyTorch path."""

import math

import numpy as np
import pytest
import torch

from analogkit.config import IOConfig
from analogkit.periphery import kernels
from analogkit.periphery.mvm import output_stage_

pytestmark = pytest.mark.skipif(not kernels.HAVE_NUMBA, reason="numba not installed")

N = 4_000_000


@pytest.mark.parametrize("method", ["rows", "scalar"])  # Box–Muller batches, ziggurat single draws
def test_kernel_normals_match_the_normal_distribution(method):
    z = kernels.standard_normal((4000, 1000), torch.Generator().manual_seed(0), method=method).double()
    assert z.numel() == N
    # mean: SE = 1/sqrt(N) = 5e-4; std: SE ≈ 1/sqrt(2N) = 3.5e-4; kurtosis 3: SE ≈ sqrt(24/N) = 2.4e-3
    assert abs(z.mean().item()) < 5 * 5e-4
    assert abs(z.std().item() - 1) < 5 * 3.5e-4
    assert abs((z**4).mean().item() - 3) < 5 * 2.4e-3
    # two-sided tail probabilities, incl. the ziggurat's tail beyond r = 3.654: binomial SE per level
    for a in (0.5, 1.0, 2.0, 3.0, 3.654, 4.0, 4.5):
        p = math.erfc(a / math.sqrt(2))
        se = math.sqrt(p * (1 - p) / N)
        assert abs((z.abs() > a).double().mean().item() - p) < 5 * se, a
    # symmetric
    assert abs((z > 0).double().mean().item() - 0.5) < 5 * 0.5 / math.sqrt(N)


def _radii_and_circles(bits):
    from numba import njit

    @njit
    def run(b):
        rho, c, s = np.empty(b.shape[0]), np.empty(b.shape[0]), np.empty(b.shape[0])
        for k in range(b.shape[0]):
            rho[k] = kernels._radius(b[k])
            c[k], s[k] = kernels._circle(b[k])
        return rho, c, s

    return run(bits)


def test_box_muller_pieces_are_accurate_to_float32():
    """ρ = √(−2 ln u) and (cos θ, sin θ) of the vectorised generator against float64 NumPy."""
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**63, 200_000, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, 200_000, dtype=np.uint64)
    # extremes: u near 2^-64 (largest radius, 9.4) and near 1 (radius near 0), and every binary exponent
    bits = np.concatenate([bits, bits >> np.uint64(40), np.array([0, 1, 2**64 - 1, 2**63], dtype=np.uint64),
                           np.uint64(1) << np.arange(64, dtype=np.uint64)])
    rho, c, s = _radii_and_circles(bits)
    v = bits | np.uint64(1)
    below_one = (~v + np.uint64(1)).astype(np.float64) / 2.0**64  # 1 − u, exact where u > 1/2
    with np.errstate(divide="ignore"):  # np.where evaluates both branches
        ln_u = np.where(v >= np.uint64(2**63), np.log1p(-below_one), np.log(v.astype(np.float64) / 2.0**64))
    exact = np.sqrt(-2 * ln_u)
    # float32 arithmetic: a few ulps (6e-8 each) relative, also next to u = 1 (ρ → 0); 1e-6 is generous
    assert np.all(np.abs(rho - exact) <= 1e-6 * exact)
    assert rho.max() > 9.4  # the tail reaches 9.4σ
    q = (bits >> np.uint64(62)).astype(np.float64)
    # the next bits as a signed fraction in [−½, ½) plus half a 22-bit cell, rounded as the kernel does
    f = ((bits << np.uint64(2)) | np.uint64(1 << 41)).view(np.int64).astype(np.float32).astype(np.float64) / 2.0**64
    theta = q * np.pi / 2 + f * np.pi / 2
    # Taylor truncation < 3e-8 plus float32 rounding of the angle (|θ| <= π/4, ulp 6e-8)
    assert np.max(np.abs(c - np.cos(theta))) < 1e-6 and np.max(np.abs(s - np.sin(theta))) < 1e-6


def test_one_draw_makes_a_pair_from_its_top_40_and_low_24_bits():
    """A pair's radius takes u from the midpoint of its top-40-bit cell, its angle the low 24 bits."""
    from numba import njit

    @njit
    def pairs(b):
        out = np.empty((b.shape[0], 2))
        for k in range(b.shape[0]):
            out[k, 0], out[k, 1] = kernels._normal_pair(b[k])
        return out

    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2**63, 10_000, dtype=np.uint64) * np.uint64(2)
    bits = np.concatenate([bits, np.array([0, 2**64 - 1, 2**24 - 1, (2**40 - 1) << 24], dtype=np.uint64)])
    z = pairs(bits)
    u = ((bits >> np.uint64(24)).astype(np.float64) + 0.5) / 2.0**40
    rho = np.sqrt(-2 * np.log(u))
    rho_k, c, s = _radii_and_circles((bits & np.uint64(0xFFFFFFFFFF000000)) | np.uint64(1 << 23))
    _, c, s = _radii_and_circles(bits << np.uint64(40))
    np.testing.assert_allclose(rho_k, rho, rtol=1e-6)  # the radius of the cell's midpoint
    np.testing.assert_allclose(z[:, 0], rho_k * c, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(z[:, 1], rho_k * s, rtol=1e-6, atol=1e-7)
    # extremes: u = 2^-41 gives the largest radius, √(82 ln 2) = 7.54; u next to 1 a tiny one
    assert abs(np.hypot(z[-4, 0], z[-4, 1]) - math.sqrt(82 * math.log(2))) < 1e-5
    assert np.hypot(z[-3, 0], z[-3, 1]) < 1e-5


def test_kernel_rows_are_independent_streams():
    z = kernels.standard_normal((2000, 500), torch.Generator().manual_seed(1)).double()
    # correlation between neighbouring rows and neighbouring columns: SE = 1/sqrt(n) ≈ 1e-3
    a, b = z[:-1].flatten(), z[1:].flatten()
    assert abs(torch.corrcoef(torch.stack([a, b]))[0, 1].item()) < 5e-3
    a, b = z[:, :-1].flatten(), z[:, 1:].flatten()
    assert abs(torch.corrcoef(torch.stack([a, b]))[0, 1].item()) < 5e-3


def test_kernel_is_reproducible_from_the_generator_state():
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(kernels.standard_normal((10, 7), g1), kernels.standard_normal((10, 7), g2))
    assert not torch.equal(kernels.standard_normal((10, 7), g1), kernels.standard_normal((10, 7), torch.Generator().manual_seed(6)))


@pytest.mark.parametrize("rows", [64, 2048])  # serial and parallel kernel
@pytest.mark.parametrize("sto_round", [False, True])
def test_kernel_and_torch_output_stage_agree_in_statistics(monkeypatch, rows, sto_round):
    io = IOConfig(out_noise=0.3, out_res=1 / 50, out_bound=3.0, out_sto_round=sto_round)
    torch.manual_seed(0)
    y0 = torch.linspace(-4, 4, 512).repeat(rows, 1)
    scale = torch.rand(rows) + 0.5
    results = {}
    for backend in ("numba", "torch"):
        monkeypatch.setenv("ANALOGKIT_KERNELS", backend)
        y = y0.clone()
        sat = output_stage_(y, scale, io, torch.Generator().manual_seed(1))
        results[backend] = (y / scale[:, None], sat)
    (yk, sk), (yt, st) = results["numba"], results["torch"]
    step = 2 * 3.0 / 50
    for y in (yk, yt):  # on the ADC grid, inside the bounds
        assert torch.allclose(y / step, (y / step).round(), atol=1e-4)
        assert (y.abs() <= 3.0 + 1e-5).all()
    # per column (a fixed input value), compare the mean output over rows: SE ≤ 0.3/sqrt(rows)·1.2
    tol = 5 * 0.36 / math.sqrt(rows) + 1e-6
    assert ((yk.mean(0) - yt.mean(0)).abs() <= tol * math.sqrt(2)).all()
    assert torch.equal(sk, st) and sk.all()  # every row reaches ±4 > bound: saturated


def test_kernel_without_noise_equals_torch_exactly(monkeypatch):
    io = IOConfig(out_noise=0.0, out_res=1 / 100, out_bound=2.0)
    y0 = torch.randn(300, 64) * 2
    scale = torch.rand(300)
    out = {}
    for backend in ("numba", "torch"):
        monkeypatch.setenv("ANALOGKIT_KERNELS", backend)
        y = y0.clone()
        out[backend] = (y, output_stage_(y, scale, io, torch.Generator()))
    assert torch.allclose(out["numba"][0], out["torch"][0], atol=1e-6)
    assert torch.equal(out["numba"][1], out["torch"][1])
