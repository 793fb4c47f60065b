"""Direction-split counts of the fused kernel (used by the one-sided pair) against the trains' law."""

from __future__ import annotations

import pytest
import torch

from analogkit.update import UpdateConfig, kernels
from analogkit.update.trains import coincidence_counts, plan_trains, probabilities

pytestmark = pytest.mark.skipif(not kernels.HAVE_NUMBA, reason="numba not installed")


def _problem():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(12, 9, generator=gen)
    d = 0.05 * torch.randn(12, 7, generator=gen)
    x[3, ::2] = 0  # a sparse sample
    return x, d


def _reference_split(x, d, lr, cfg, dw):
    counts = coincidence_counts(x, d, plan_trains(x, d, lr, cfg, dw), cfg, torch.Generator().manual_seed(1))
    return counts.clamp(min=0).sum(0), (-counts).clamp(min=0).sum(0)


def test_implicit_counts_equal_the_reference_exactly():
    """deterministic_implicit counts are a function of x and d: both back-ends must agree exactly."""
    x, d = _problem()
    cfg = UpdateConfig(pulse_type="deterministic_implicit")
    up, down = kernels.kernel_split_counts(x, d, 0.05, cfg, torch.Generator().manual_seed(2), 0.001)
    ref_up, ref_down = _reference_split(x, d, 0.05, cfg, 0.001)
    assert torch.equal(up, ref_up.to(torch.int32)) and torch.equal(down, ref_down.to(torch.int32))
    assert up.sum() > 0 and down.sum() > 0


def test_stochastic_counts_have_the_expected_mean_per_direction():
    """E[count_ij] = Σ_n BL_n·p_nj·q_ni over the samples of one direction (up: −d_i·x_j > 0); the
    per-element mean of R calls is compared with it in units of its standard error (5 SE), using
    the binomial-like variance Σ_n BL_n·π(1 − π) as an upper bound (coincidences are correlated
    along rows and columns, but an element's slots are independent: Binomial(BL_n, p·q))."""
    x, d = _problem()
    cfg, lr, dw = UpdateConfig(), 0.05, 0.001
    plan = plan_trains(x, d, lr, cfg, dw)
    p, q = probabilities(x, d, plan)
    pi = q[:, :, None] * p[:, None, :]  # (M, out, in)
    bl = plan.bl.to(torch.float64)[:, None, None]
    raise_w = (-torch.sign(d)[:, :, None] * torch.sign(x)[:, None, :]) > 0
    expected_up = (bl * pi * raise_w).sum(0)
    expected_down = (bl * pi * ~raise_w).sum(0)
    var_up = (bl * pi * (1 - pi) * raise_w).sum(0)
    var_down = (bl * pi * (1 - pi) * ~raise_w).sum(0)
    reps = 400
    gen = torch.Generator().manual_seed(3)
    ups, downs = zip(*(kernels.kernel_split_counts(x, d, lr, cfg, gen, dw) for _ in range(reps)))
    mean_up = torch.stack(ups).double().mean(0)
    mean_down = torch.stack(downs).double().mean(0)
    assert ((mean_up - expected_up).abs() <= 5 * (var_up / reps).sqrt() + 1e-12).all()
    assert ((mean_down - expected_down).abs() <= 5 * (var_down / reps).sqrt() + 1e-12).all()
    assert expected_up.sum() > 50 and expected_down.sum() > 50
