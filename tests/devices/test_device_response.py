"""Pulse-response traces, step curves and P1's response functions; symmetry points."""

from __future__ import annotations

import math

import pytest
import torch

import analogkit.devices as D
from device_testkit import NO_D2D


@pytest.mark.parametrize("name", list(D.DEVICE_PRESETS))
def test_device_pulse_response_shapes(name: str) -> None:
    dev = D.build_preset(name)
    resp = D.pulse_response(dev, n_pulses=20, n_cycles=2, n_traces=3, seed=0)
    assert resp.w.shape == resp.w_apparent.shape == (3, 80)
    assert resp.pulses.tolist() == ([1] * 20 + [-1] * 20) * 2
    assert torch.all((resp.w >= resp.w_min[:, None]) & (resp.w <= resp.w_max[:, None]))
    curve = D.step_curve(dev, n_points=11)
    assert curve.w.shape == curve.mean_up.shape == curve.std.shape == (11,)
    assert torch.isfinite(curve.mean_up).all() and torch.isfinite(curve.mean_down).all()


def test_device_pulse_response_staircase_without_noise() -> None:
    dev = D.ConstantStepDevice(dw_min=0.1, dw_min_std=0.0, w_max=0.45, w_min=-0.45, **NO_D2D, reset_std=0.0)
    resp = D.pulse_response(dev, n_pulses=6, n_cycles=1, n_traces=2, seed=0)
    expected = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.45, 0.45, 0.35, 0.25, 0.15, 0.05, -0.05, -0.15])
    torch.testing.assert_close(resp.w[0], expected)
    assert torch.equal(resp.w0, torch.zeros(2))


def test_device_pulse_response_is_reproducible() -> None:
    dev = D.build_preset("reram_es")
    a, b = D.pulse_response(dev, seed=3, n_pulses=10), D.pulse_response(dev, seed=3, n_pulses=10)
    assert torch.equal(a.w, b.w) and torch.equal(a.w_apparent, b.w_apparent)
    with pytest.raises(ValueError, match="n_pulses"):
        D.pulse_response(dev, n_pulses=0)


def test_device_soft_bounds_response_functions_p1() -> None:
    """Wu et al. 2025 (P1): symmetric soft bounds on ±τ have q₊ = 1 − w/τ, q₋ = 1 + w/τ, so F = 1,
    G = w/τ and the symmetric point is 0."""
    tau = 0.8
    dev = D.SoftBoundsDevice(dw_min=0.01, w_max=tau, w_min=-tau)
    curve = D.step_curve(dev, n_points=17)
    torch.testing.assert_close(curve.q_up, 1 - curve.w / tau)
    torch.testing.assert_close(curve.q_down, 1 + curve.w / tau)
    torch.testing.assert_close(curve.F, torch.ones_like(curve.F))
    torch.testing.assert_close(curve.G, curve.w / tau)
    assert abs(curve.symmetry_point.item()) < 1e-12


def test_device_soft_bounds_symmetry_point_formula_and_attractor() -> None:
    """w* = (Δw⁺ − Δw⁻)/(Δw⁺/b^max − Δw⁻/b^min); random ±1 pulses drive the weights there.
    500 elements × 3000 random pulses: the stationary spread is ≈ 0.05, the mean's standard
    error ≈ 0.003; tolerance 0.02."""
    dev = D.SoftBoundsDevice(dw_min=0.01, up_down=0.2, w_max=1.0, w_min=-1.0, **NO_D2D, reset_std=0.0)
    gen = torch.Generator().manual_seed(0)
    state = dev.build_state((500,), gen, dtype=torch.float64)
    expected = (0.01 - 0.008) / (0.01 / 1.0 + 0.008 / 1.0)
    torch.testing.assert_close(dev.symmetry_point(state), torch.full((500,), expected, dtype=torch.float64))
    for _ in range(3000):
        direction = (torch.randint(0, 2, (500,), generator=gen) * 2 - 1).to(torch.int8)
        dev.pulse(state, direction, gen)
    assert abs(state.w.mean().item() - expected) < 0.02


@pytest.mark.parametrize("kind", ["exp_step", "pow_step", "piecewise_step", "linear_step", "soft_bounds_reference"])
def test_device_symmetry_point_balances_steps(kind: str) -> None:
    """Where a symmetry point lies strictly inside the range, the expected up and down steps cancel there."""
    cls = D.DEVICES.get(kind)
    extra = {"piecewise_step": dict(piecewise_up=[2.0, 1.0, 0.1], piecewise_down=[0.1, 1.0, 2.0]),
             "linear_step": dict(gamma_up=0.5, gamma_down=0.8, mean_bound_reference=False),
             "pow_step": dict(pow_up_down=0.3),
             "soft_bounds_reference": dict(reference_mean=0.1)}.get(kind, {})
    dev = cls(**extra)
    gen = torch.Generator().manual_seed(0)
    state = dev.build_state((300,), gen, dtype=torch.float64)
    sp = dev.symmetry_point(state)
    inside = (sp > state.w_min + 1e-6) & (sp < state.w_max - 1e-6)
    assert inside.float().mean() > 0.5
    dev.set_weights(state, torch.where(inside, sp, state.w), gen)
    up, _ = dev.step_stats(state, 1)
    down, _ = dev.step_stats(state, -1)
    assert torch.all((up + down)[inside].abs() <= 1e-6 * dev.dw_min)


def test_device_pow_step_reference_symmetry_point_subtracted() -> None:
    dev = D.PowStepReferenceDevice(pow_gamma=2.0, pow_up_down=0.3, subtract_symmetry_point=True)
    state = dev.build_state((500,), torch.Generator().manual_seed(0), dtype=torch.float64)
    up, _ = dev.step_stats(state, 1)  # w starts at reset 0 = the symmetry point
    down, _ = dev.step_stats(state, -1)
    assert torch.all((up + down).abs() <= 1e-9)


def test_device_constant_step_symmetry_point() -> None:
    dev = D.ConstantStepDevice(up_down=0.1, **NO_D2D)
    state = dev.build_state((2,), torch.Generator().manual_seed(0))
    torch.testing.assert_close(dev.symmetry_point(state), state.w_max)  # up_down > 0: up steps larger, drifts up
    sym = D.ConstantStepDevice(**NO_D2D)
    assert torch.isnan(sym.symmetry_point(sym.build_state((2,), torch.Generator().manual_seed(0)))).all()
    assert torch.isnan(D.IdealDevice().symmetry_point(state)).all()


def test_device_soft_bounds_pmax_pulse_response() -> None:
    """Without noise and d2d variation: p up pulses from range_min give range_min + B(1 − e^{−αp}),
    p_max of them reach range_max; p_max down pulses from range_max reach range_min."""
    dev = D.SoftBoundsPmaxDevice(p_max=300, alpha=0.01, range_min=-0.6, range_max=1.0, dw_min_std=0.0, **NO_D2D)
    gen = torch.Generator().manual_seed(0)
    state = dev.build_state((2,), gen, dtype=torch.float64)
    dev.set_weights(state, torch.tensor([-0.6, 1.0], dtype=torch.float64), gen)
    dev.pulse_n(state, torch.tensor([100, -100]), gen, method="loop")
    b = dev.b_factor
    torch.testing.assert_close(state.w, torch.tensor([-0.6 + b * (1 - math.exp(-1.0)), 1.0 - b * (1 - math.exp(-1.0))],
                                                     dtype=torch.float64))
    dev.pulse_n(state, torch.tensor([200, -200]), gen)
    torch.testing.assert_close(state.w, torch.tensor([1.0, -0.6], dtype=torch.float64))
