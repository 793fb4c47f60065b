"""The numba kernel's series law for multiplicative c2c noise on affine steps (dense samples).

With m(w) = s·(w − w*), c pulses multiply u = w − w* by Π f_k, f_k = 1 + s(1 + ση_k), so the raw
moments of the exact law are E[(Π f)^p] = (E f^p)^c with E f = 1 + s, E f² = (1 + s)² + s²σ²,
E f³ = (1 + s)³ + 3(1 + s)s²σ². The kernel draws log Π f from a series (module docstring of
:mod:`analogkit.update.kernels`); these tests check it against those moments, including the
skewness that a moment-matched Gaussian (``pulse_application="closed_form"``) does not have, and
that per-pulse clipping at the bound behind an element is kept (its fallback).
"""

from __future__ import annotations

import math

import pytest
import torch
from update_testkit import NO_D2D, repeat_updates

import analogkit.devices as D
from analogkit.update import UpdateConfig, kernels, pulsed_update_

pytestmark = pytest.mark.skipif(not kernels.HAVE_NUMBA, reason="numba not installed")


def _exact_moments(s: float, sigma: float, c: int) -> tuple[float, float, float]:
    """Mean, variance and skewness of Π_{k<c} f_k, f = 1 + s(1 + σ·N(0, 1))."""
    m1 = (1 + s) ** c
    m2 = ((1 + s) ** 2 + s * s * sigma * sigma) ** c
    m3 = ((1 + s) ** 3 + 3 * (1 + s) * s * s * sigma * sigma) ** c
    var = m2 - m1 * m1
    skew = (m3 - 3 * m1 * var - m1**3) / var**1.5
    return m1, var, skew


def _all_slots(n_in: int, n_out: int, samples: int, up: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs for which every row and column fires in every slot: every element gets BL pulses per
    sample, all in one direction (up: d < 0)."""
    return torch.ones(samples, n_in), (-1.0 if up else 1.0) * torch.ones(samples, n_out)


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_series_law_matches_the_exact_moments_of_the_pulse_product(backend):
    """One dense sample of c = 25 up pulses on 2^20 identical soft-bounds elements: mean, variance
    and skewness of w_c − w* against the exact moments. ε = |s|σ/(1 + s) = 1.5·10⁻³ keeps the series
    within its tolerance (no fallback). Tolerances: 5 standard errors of the pooled sample
    (N = 2^20): SE(mean) = sd/√N; SE(var) = √((m₄ − var²)/N); SE(skew) = √(6/N) = 0.0024 for a
    near-Gaussian law. The exact skewness (0.023) is above 9 SE, so a Gaussian draw of the same
    mean and variance fails the last check."""
    s, sigma, c = -0.0025, 0.6, 25
    dev = D.SoftBoundsDevice(dw_min=-s, w_max=1.0, w_min=-1.0, dw_min_std=sigma, **NO_D2D)
    gen = torch.Generator().manual_seed(0)
    state0 = dev.build_state((512, 512), gen)
    x, d = _all_slots(512, 512, 1, up=True)
    cfg = UpdateConfig(desired_bl=c, update_management=False, backend=backend)
    ratios = []
    for _ in range(4):
        st = state0.clone()
        stats = pulsed_update_(dev, st, x, d, 1.0, cfg, gen)
        assert stats.max_count == c
        ratios.append(((st.w - 1.0) / (state0.w - 1.0)).double().flatten())  # u_c/u_0 = Π f
    r = torch.cat(ratios)
    n = r.numel()
    m1, var, skew = _exact_moments(s, sigma, c)
    mean_r, var_r = r.mean().item(), r.var().item()
    cen = r - mean_r
    skew_r = ((cen**3).mean() / var_r**1.5).item()
    m4 = (cen**4).mean().item()
    assert abs(mean_r - m1) < 5 * math.sqrt(var / n), (mean_r, m1)
    assert abs(var_r - var) < 5 * math.sqrt((m4 - var_r**2) / n), (var_r, var)
    assert skew > 9 * math.sqrt(6 / n)  # the test can tell the law from a Gaussian
    assert abs(skew_r - skew) < 5 * math.sqrt(6 / n), (skew_r, skew)


def test_series_law_keeps_the_clipping_at_the_bound_behind():
    """Elements at their lower bound receiving two up pulses with wide noise (σ = 1: a sixth of the
    pulses point back): per pulse, a backward first step is clipped at the bound and the second
    starts from there. The series law without that clipping ends lower and wider: with the fallback
    disabled, the pooled mean differs by ~7 and the variance by ~12 standard errors from the
    reference (65536 samples, measured). The kernel must fall back to pulses there and agree with
    the reference in mean and variance (5 standard errors)."""
    dev = D.SoftBoundsDevice(dw_min=0.001, dw_min_std=1.0, **NO_D2D)
    gen = torch.Generator().manual_seed(1)
    state0 = dev.build_state((8, 16), gen)
    dev.set_weights(state0, state0.w_min.clone(), gen)
    x, d = _all_slots(16, 8, 1, up=True)
    results = {}
    for backend in ("torch", "numba"):
        cfg = UpdateConfig(desired_bl=2, update_management=False, backend=backend)
        w, _ = repeat_updates(dev, state0, x, d, 1.0, cfg, 512, seed=7 if backend == "torch" else 8)
        results[backend] = (w - state0.w).double().flatten()
    a, b = results["torch"], results["numba"]
    se = math.sqrt((a.var() + b.var()).item() / a.numel())
    assert abs(a.mean().item() - b.mean().item()) < 5 * se, (a.mean().item(), b.mean().item(), se)
    m4 = ((a - a.mean()) ** 4).mean() + ((b - b.mean()) ** 4).mean()
    se_v = math.sqrt((m4 - a.var() ** 2 - b.var() ** 2).clamp(min=0).item() / a.numel())
    assert abs(a.var().item() - b.var().item()) < 5 * se_v


@pytest.mark.parametrize("start", ["middle", "near_upper"])
def test_series_law_and_reference_agree_with_device_to_device_variation(start):
    """Default soft bounds (d2d spread of steps and bounds, σ = 0.3) and a linear step whose fixed
    point lies beyond its bound (γ = 0.3: clipping ahead can act): the kernel (series law where it
    is within tolerance, pulses elsewhere) and the pulse-by-pulse reference give the same law per
    element (5 standard errors of the mean and variance differences, REPS repeats each). An element
    whose bound is next to 0 (d2d) sits at its fixed point, where the two back-ends differ by
    rounding only: the mean's standard error is floored at 10⁻⁷ (a float32 ulp of w ~ 1)."""
    reps = 200
    for dev in (D.SoftBoundsDevice(), D.LinearStepDevice(gamma_up=0.3, gamma_down=0.3)):
        gen = torch.Generator().manual_seed(2)
        state0 = dev.build_state((6, 24), gen)
        w = torch.zeros(6, 24) if start == "middle" else state0.w_max - 20 * dev.dw_min
        dev.set_weights(state0, w, gen)
        x = torch.randn(4, 24, generator=gen).abs() + 0.5  # dense samples, every column fires often
        d = -0.2 * (torch.rand(4, 6, generator=gen) + 0.5)  # up pulses
        out = {}
        for backend in ("torch", "numba"):
            cfg = UpdateConfig(backend=backend)
            w_r, _ = repeat_updates(dev, state0, x, d, 0.05, cfg, reps, seed=9 if backend == "torch" else 10)
            out[backend] = (w_r - state0.w).double()
        a, b = out["torch"], out["numba"]
        se_m = torch.sqrt((a.var(0) + b.var(0)) / reps).clamp(min=1e-7)
        assert ((a.mean(0) - b.mean(0)).abs() / se_m).max() < 5, type(dev).__name__
        m4 = ((a - a.mean(0)) ** 4).mean(0) + ((b - b.mean(0)) ** 4).mean(0)
        se_v = torch.sqrt((m4 - a.var(0) ** 2 - b.var(0) ** 2).clamp(min=0) / reps).clamp(min=1e-14)
        assert ((a.var(0) - b.var(0)).abs() / se_v).max() < 5, type(dev).__name__
