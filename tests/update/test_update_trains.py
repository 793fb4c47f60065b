"""Pulse trains: bit length and update management, coincidence counts and their correlation.

Counts of the numba back-end are observed through an unbounded ideal device starting at w = 0,
where Δw = count·dw_min (in float32 up to 1e-9, far below dw_min/2, so rounding recovers the count).
"""

from __future__ import annotations

import math

import pytest
import torch
from update_testkit import BACKENDS, expected_bl, expected_probs

import analogkit.devices as D
from analogkit.update import (
    UpdateConfig,
    coincidence_counts,
    plan_trains,
    probabilities,
    pulsed_update_,
)

DW = 0.001


def _counts_via_ideal(x, d, lr, cfg, reps, seed=0):
    """Signed counts (reps, out, in) summed over the samples of x, d, from ``reps`` calls."""
    dev = D.IdealDevice(dw_min=DW)
    gen = torch.Generator().manual_seed(seed)
    state0 = dev.build_state((d.shape[1], x.shape[1]), gen)
    out = []
    for _ in range(reps):
        st = state0.clone()
        stats = pulsed_update_(dev, st, x, d, lr, cfg, gen)
        out.append(torch.round((st.w - state0.w).double() / DW))
    return torch.stack(out), stats


# -- bit length and update management -----------------------------------------------------------
def test_bl_management_follows_the_formula():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(28, 9, generator=gen) * 10 ** (3 * torch.rand(28, 1, generator=gen) - 2)
    d = torch.randn(28, 5, generator=gen) * 10 ** (3 * torch.rand(28, 1, generator=gen) - 3)
    x[3] = 0  # skipped samples
    d[5] = 0
    seen = set()
    for lr in (0.001, 0.01, 0.1):
        cfg = UpdateConfig()
        plan = plan_trains(x, d, lr, cfg, DW)
        want = [expected_bl(lr, float(x[n].abs().max()), float(d[n].abs().max()), DW, cfg) for n in range(28)]
        assert plan.bl.tolist() == want
        seen |= set(want)
        for backend in BACKENDS:
            dev = D.IdealDevice(dw_min=DW)
            st = dev.build_state((5, 9), gen)
            stats = pulsed_update_(dev, st, x, d, lr, cfg.replace(backend=backend), gen)
            assert stats.bl.tolist() == want, backend
            assert stats.skipped == 2
            assert stats.mean_bl == pytest.approx(sum(want) / 26)
    assert len(seen) > 8  # the data exercise many bit lengths, 1 and 31 included
    assert {0, 1, 31} <= seen


def test_fixed_and_free_bit_length_without_bl_management():
    x, d = torch.ones(1, 3), torch.ones(1, 2)
    fixed = UpdateConfig(update_bl_management=False)
    assert plan_trains(x, d, 0.5, fixed, DW).bl.tolist() == [31]
    free = fixed.replace(fixed_bl=False)
    assert plan_trains(x, d, 0.5, free, DW).bl.tolist() == [500]  # ceil(lr/dw_min) when lr > dw_min·BL
    assert plan_trains(x, d, 0.02, free, DW).bl.tolist() == [31]  # lr <= dw_min·BL: unchanged


@pytest.mark.parametrize("k", [1.0, 3.0, 0.25])
def test_update_management_balances_the_probabilities(k):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(6, 7, generator=gen) * 2
    d = torch.randn(6, 4, generator=gen) * 1e-3
    lr = 0.02
    cfg = UpdateConfig(um_grad_scale=k)
    plan = plan_trains(x, d, lr, cfg, DW)
    xm, dm = x.abs().amax(1).double(), d.abs().amax(1).double()
    bl = plan.bl.double()
    torch.testing.assert_close(plan.a * xm / (plan.b * dm), torch.full_like(xm, k))
    torch.testing.assert_close(plan.a * plan.b, lr / (DW * bl))
    p, q = probabilities(x, d, plan)
    torch.testing.assert_close(p.amax(1) / q.amax(1), torch.full_like(xm, k))  # nothing clips here
    # without update management: A = B = sqrt(lr/(dw_min·BL))
    plain = plan_trains(x, d, lr, cfg.replace(update_management=False), DW)
    torch.testing.assert_close(plain.a, torch.sqrt(lr / (DW * plain.bl.double())))
    torch.testing.assert_close(plain.a, plain.b)


# -- counts --------------------------------------------------------------------------------------
def test_reference_counts_never_exceed_bl_and_have_the_right_sign():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(40, 16, generator=gen) * torch.logspace(-2, 1, 40)[:, None]
    d = torch.randn(40, 12, generator=gen) * torch.logspace(1, -3, 40)[:, None]
    cfg = UpdateConfig()
    plan = plan_trains(x, d, 0.05, cfg, DW)
    counts = coincidence_counts(x, d, plan, cfg, gen)
    assert (counts.abs() <= plan.bl[:, None, None]).all()
    sign = -(torch.sign(d)[:, :, None] * torch.sign(x)[:, None, :])
    assert ((counts == 0) | (torch.sign(counts) == sign)).all()
    assert (counts.abs() == plan.bl[:, None, None]).any()  # p = q = 1 at the max elements


@pytest.mark.parametrize("backend", BACKENDS)
def test_counts_of_every_sample_stay_within_its_bl(backend):
    gen = torch.Generator().manual_seed(4)
    cfg = UpdateConfig(backend=backend)
    for scale in (0.02, 0.2, 2.0):  # BL 1..31
        x = torch.randn(1, 12, generator=gen)
        d = scale * torch.randn(1, 10, generator=gen)
        counts, stats = _counts_via_ideal(x, d, 0.05, cfg, reps=40)
        bl = stats.bl.item()
        assert counts.abs().max() <= bl
        assert stats.max_count <= bl


@pytest.mark.parametrize("backend", BACKENDS)
def test_long_trains_without_bl_management(backend):
    """fixed_bl=False may ask for BL > 64 (several words per train in the kernel): counts <= BL,
    and with p = q = 1 (|x| = |d| = 1, A = B = 1) every slot coincides: count = BL exactly."""
    cfg = UpdateConfig(update_bl_management=False, update_management=False, fixed_bl=False, backend=backend)
    lr = 0.15  # BL = ceil(0.15/0.001) = 150 (three 64-bit words)
    x = torch.tensor([[1.0, -1.0, 0.5]])
    d = torch.tensor([[1.0, -0.5]])
    counts, stats = _counts_via_ideal(x, d, lr, cfg, reps=200)
    assert stats.bl.tolist() == [150]
    assert counts.abs().max() <= 150
    assert counts[:, 0, 0].eq(-150).all() and counts[:, 0, 1].eq(150).all()
    # E[count] = BL·p·q with p = |x|, q = |d| (A = B = sqrt(lr/(dw_min·BL)) = 1): SE = sqrt(BL·pq(1−pq)/reps)
    for (i, j), pq in {(0, 2): 0.5, (1, 0): 0.5, (1, 2): 0.25}.items():
        se = math.sqrt(150 * pq * (1 - pq) / 200)
        assert abs(counts[:, i, j].abs().double().mean() - 150 * pq) < 5 * se


def _covariance(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """Sample covariance and its standard error sqrt((Var a·Var b + Cov²)/n) (Gaussian approximation)."""
    a, b = a.double(), b.double()
    n = a.numel()
    cov = float(((a - a.mean()) * (b - b.mean())).sum() / (n - 1))
    se = math.sqrt((float(a.var()) * float(b.var()) + cov**2) / n)
    return cov, se


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("um", "pad"), [(False, 0), (True, 0), (False, 6)])
def test_counts_are_correlated_along_rows_and_columns(backend, um, pad):
    """Exact semantics: (i, j) and (i, j') share the row bits of every slot. Per slot t let R_t, C_t,
    C'_t be the (independent) bits of row i and columns j, j'. n = Σ_t R_t C_t, n' = Σ_t R_t C'_t and
    slots are independent, so Cov(n, n') = BL·(E[R C C'] − E[R C]·E[R C']) = BL·q(1 − q)·p_j·p_j'
    (and BL·p(1 − p)·q_i·q_i' along a column; 0 for different rows and columns). ``pad``: zero
    inputs and errors appended, so that fewer than half of the trains can fire (the kernel then
    draws only those): the same law, and the padding never pulses."""
    reps = 3000
    x = torch.cat([torch.tensor([[0.3, -0.5, 0.7, 0.9]]), torch.zeros(1, pad)], 1)
    d = torch.cat([torch.tensor([[0.4, 0.6, -0.8]]), torch.zeros(1, pad)], 1)
    lr = 0.031  # with BL 31 and no management: A = B = sqrt(lr/(dw_min·BL)) = 1, so p = |x|, q = |d|
    cfg = UpdateConfig(update_bl_management=False, update_management=um, um_grad_scale=1.5, backend=backend)
    bls, p, q = expected_probs(x, d, lr, DW, cfg)
    bl, p, q = bls[0], p[0], q[0]
    counts, _ = _counts_via_ideal(x, d, lr, cfg, reps=reps, seed=7)
    n = counts.abs()
    assert not n[:, 3:].any() and not n[:, :, 4:].any()  # the padding
    checked = 0
    for (i, j, i2, j2) in [(0, 0, 0, 1), (1, 2, 1, 3), (2, 1, 2, 3), (0, 1, 2, 1), (1, 3, 2, 3), (0, 0, 1, 2), (2, 3, 1, 0)]:
        if i == i2:
            want = bl * q[i] * (1 - q[i]) * p[j] * p[j2]
        elif j == j2:
            want = bl * p[j] * (1 - p[j]) * q[i] * q[i2]
        else:
            want = 0.0
        cov, se = _covariance(n[:, i, j], n[:, i2, j2])
        assert abs(cov - float(want)) < 5 * se, ((i, j, i2, j2), cov, float(want), se)
        checked += float(want) > 5 * se  # the positive covariances are resolved, not just bounded
    assert checked >= 3
    # and the marginal law of one count is Binomial(BL, p·q)
    pq = float(p[2] * q[0])
    assert abs(n[:, 0, 2].double().mean() - bl * pq) < 5 * math.sqrt(bl * pq * (1 - pq) / reps)


@pytest.mark.parametrize("backend", BACKENDS)
def test_deterministic_implicit_counts(backend):
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(3, 7, generator=gen)
    d = 0.1 * torch.randn(3, 5, generator=gen)
    lr = 0.05
    for res in (0.0, 0.1):
        cfg = UpdateConfig(pulse_type="deterministic_implicit", x_res_implicit=res, d_res_implicit=res, backend=backend)
        bls, p, q = expected_probs(x, d, lr, DW, cfg)
        want = torch.zeros(5, 7, dtype=torch.float64)
        for n, bl in enumerate(bls):
            rx = res or 1.0 / bl
            rd = res or 1.0 / bl
            xh = (torch.round(p[n] / rx) * rx).clamp(max=1)
            dh = (torch.round(q[n] / rd) * rd).clamp(max=1)
            sign = -(torch.sign(d[n].double())[:, None] * torch.sign(x[n].double())[None, :])
            want += sign * torch.round(bl * dh[:, None] * xh[None, :])
        counts, _ = _counts_via_ideal(x, d, lr, cfg, reps=2)
        assert torch.equal(counts[0], want) and torch.equal(counts[1], want)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mean_count_has_the_expected_mean_and_rounding_spread(backend):
    """count = floor(μ) + Bernoulli(frac μ), μ = BL·p·q: mean μ, variance frac(1 − frac)."""
    x = torch.tensor([[0.3, -0.55, 0.9]])
    d = torch.tensor([[0.45, -0.8]])
    lr, reps = 0.031, 2000
    cfg = UpdateConfig(pulse_type="mean_count", update_bl_management=False, update_management=False, backend=backend)
    counts, _ = _counts_via_ideal(x, d, lr, cfg, reps=reps, seed=3)
    mu = 31 * d.abs().double()[0][:, None] * x.abs().double()[0][None, :]
    frac = mu - torch.floor(mu)
    n = counts.abs()
    assert ((n == torch.floor(mu)) | (n == torch.floor(mu) + 1)).all()
    se = torch.sqrt(frac * (1 - frac) / reps).clamp(min=1e-9)
    assert ((n.mean(0) - mu).abs() < 5 * se + 1e-12).all()
