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


def _pairs(bits):
    from numba import njit

    @njit
    def run(b):
        out = np.empty((b.shape[0], 2))
        for k in range(b.shape[0]):
            out[k, 0], out[k, 1] = kernels._normal_pair(b[k])
        return out

    return run(bits)


def test_box_muller_pairs_are_accurate_to_float32():
    """(ρ cos θ, ρ sin θ) of one draw against float64 NumPy: u the midpoint of the cell of the top
    40 bits, θ = q·π/2 + φ with q bits 22–23 and φ ∈ (−π/4, π/4) the midpoint of the cell of bits
    0–21 read as a signed 22-bit integer."""
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**63, 200_000, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, 200_000, dtype=np.uint64)
    # extremes: u = 2^-41 (the largest radius), u next to 1 (radius near 0), top 32 bits zero (u < 2^-32),
    # every binary exponent of u, and every quadrant boundary
    bits = np.concatenate([bits, bits >> np.uint64(32), bits >> np.uint64(40), np.array([0, 2**64 - 1], dtype=np.uint64),
                           np.uint64(1) << np.arange(24, 64, dtype=np.uint64),
                           (np.uint64(1) << np.arange(24, 64, dtype=np.uint64)) - np.uint64(1),
                           np.arange(4, dtype=np.uint64) << np.uint64(22)])
    z = _pairs(bits)
    u = ((bits >> np.uint64(24)).astype(np.float64) + 0.5) / 2.0**40  # exact: 41 significant bits
    rho = np.sqrt(-2 * np.log(u))
    q = ((bits >> np.uint64(22)) & np.uint64(3)).astype(np.float64)
    cell = (bits & np.uint64(0x3FFFFF)).astype(np.int64)
    cell = np.where(cell >= 2**21, cell - 2**22, cell)  # bits 0–21 as a signed 22-bit integer
    phi = (cell + 0.5) / 2.0**22 * np.pi / 2
    theta = q * np.pi / 2 + phi
    # float32 arithmetic: a few ulps (6e-8 each) of ρ, also next to u = 1, and of the angle's
    # cos/sin (Taylor truncation < 3e-8); 1e-6 of ρ is generous and still fails on any wrong bit
    assert np.all(np.abs(z[:, 0] - rho * np.cos(theta)) <= 1e-6 * rho + 1e-12)
    assert np.all(np.abs(z[:, 1] - rho * np.sin(theta)) <= 1e-6 * rho + 1e-12)
    assert abs(rho.max() - math.sqrt(82 * math.log(2))) < 1e-12  # the tail reaches 7.54σ (u = 2^-41)
    zero = np.flatnonzero(bits == 0)[0]
    assert abs(np.hypot(z[zero, 0], z[zero, 1]) - math.sqrt(82 * math.log(2))) < 1e-5


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
