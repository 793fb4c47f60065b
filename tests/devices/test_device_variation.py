"""Device-to-device spread of steps, bounds and slow parameters; cycle-to-cycle spread across pulses."""

from __future__ import annotations

import math

import pytest
import torch

import analogkit.devices as D

# N elements; the sample std of N Gaussian draws has standard error ≈ s/√(2N); tolerances are 5 of those.
N = 100_000


def _tol(s: float, n: int = N) -> float:
    return 5 * s / math.sqrt(2 * n)


def test_device_d2d_step_spread() -> None:
    dev = D.ConstantStepDevice(dw_min=0.01, dw_min_dtod=0.3, up_down_dtod=0.0)
    state = dev.build_state((N,), torch.Generator().manual_seed(0), dtype=torch.float64)
    assert abs(state.dw_up.std().item() - 0.01 * 0.3) <= _tol(0.003)
    assert abs(state.dw_up.mean().item() - 0.01) <= 5 * 0.003 / math.sqrt(N)
    torch.testing.assert_close(state.dw_up, state.dw_down)  # no up/down d2d: the same gain both ways


def test_device_d2d_up_down_spread_and_bias() -> None:
    dev = D.ConstantStepDevice(dw_min=0.01, dw_min_dtod=0.0, up_down=0.2, up_down_dtod=0.05)
    state = dev.build_state((N,), torch.Generator().manual_seed(1), dtype=torch.float64)
    # Δw⁺ − Δw⁻ = dw_min·(up_down + 2r), r ~ N(0, up_down_dtod²)
    diff = (state.dw_up - state.dw_down) / 0.01
    assert abs(diff.mean().item() - 0.2) <= 5 * 0.1 / math.sqrt(N)
    assert abs(diff.std().item() - 0.1) <= _tol(0.1)
    exact = D.ConstantStepDevice(dw_min=0.01, dw_min_dtod=0.0, up_down=-0.2, up_down_dtod=0.0)
    st = exact.build_state((3,), torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(st.dw_up, torch.full((3,), 0.008, dtype=torch.float64))
    torch.testing.assert_close(st.dw_down, torch.full((3,), 0.01, dtype=torch.float64))


def test_device_d2d_log_normal_steps() -> None:
    dev = D.SoftBoundsDevice(dw_min=0.01, dw_min_dtod=0.5, dw_min_dtod_log_normal=True, up_down_dtod=0.0)
    state = dev.build_state((N,), torch.Generator().manual_seed(2), dtype=torch.float64)
    log_gain = torch.log(state.dw_up / 0.01)
    assert abs(log_gain.std().item() - 0.5) <= _tol(0.5)
    assert abs(log_gain.mean().item()) <= 5 * 0.5 / math.sqrt(N)
    assert torch.all(state.dw_up > 0)


def test_device_d2d_bound_spread() -> None:
    dev = D.ConstantStepDevice(w_max=0.8, w_min=-0.4, w_max_dtod=0.2, w_min_dtod=0.1)
    state = dev.build_state((N,), torch.Generator().manual_seed(3), dtype=torch.float64)
    assert abs(state.w_max.std().item() - 0.8 * 0.2) <= _tol(0.16)
    assert abs(state.w_min.std().item() - 0.4 * 0.1) <= _tol(0.04)
    assert torch.all(state.w_max >= 0) and torch.all(state.w_min <= 0)  # enforce_consistency


def test_device_d2d_inconsistent_devices_without_enforcement() -> None:
    """Without enforce_consistency, elements whose bounds cross are stuck at their midpoint."""
    dev = D.ConstantStepDevice(w_max=0.1, w_min=-0.1, w_max_dtod=3.0, w_min_dtod=3.0, enforce_consistency=False)
    state = dev.build_state((N,), torch.Generator().manual_seed(4))
    assert torch.all(state.w_min <= state.w_max)
    assert (state.w_min == state.w_max).float().mean() > 0.1


def test_device_d2d_slow_parameters() -> None:
    dev = D.ConstantStepDevice(lifetime=100.0, lifetime_dtod=0.1, diffusion=0.01, diffusion_dtod=0.2,
                               reset=0.05, reset_dtod=0.02)
    state = dev.build_state((N,), torch.Generator().manual_seed(5), dtype=torch.float64)
    tau = 1 / (1 - state.decay_scale)
    assert abs(tau.std().item() - 10.0) <= _tol(10.0) + 0.05  # 1/(1−(1−1/τ)) round-off
    assert abs(state.diffusion_rate.std().item() - 0.002) <= _tol(0.002)
    assert abs(state.reset_bias.mean().item() - 0.05) <= 5 * 0.02 / math.sqrt(N)
    assert abs(state.reset_bias.std().item() - 0.02) <= _tol(0.02)


@pytest.mark.parametrize("mult_noise", [True, False])
def test_device_c2c_spread_across_pulses(mult_noise: bool) -> None:
    """Per element, the std of Δw over 3000 pulses is σ·(that element's own step): c2c noise is
    relative to the element's d2d step. 5 standard errors of a std from 3000 samples: 6.5 %."""
    n_pulses, n_el = 3000, 8
    dev = D.LinearStepDevice(dw_min=0.001, dw_min_std=0.4, dw_min_dtod=0.5, up_down_dtod=0.0, w_max=100.0, w_min=-100.0,
                             w_max_dtod=0.0, w_min_dtod=0.0, gamma_up=0.0, gamma_down=0.0, gamma_up_dtod=0.0,
                             gamma_down_dtod=0.0, mult_noise=mult_noise)
    gen = torch.Generator().manual_seed(6)
    state = dev.build_state((n_el,), gen, dtype=torch.float64)
    steps = torch.empty(n_pulses, n_el, dtype=torch.float64)
    up = torch.ones(n_el, dtype=torch.int8)
    for k in range(n_pulses):
        before = state.w.clone()
        dev.pulse(state, up, gen)
        steps[k] = state.w - before
    expected = 0.4 * state.dw_up
    assert torch.all((steps.std(0) - expected).abs() <= 5 * expected / math.sqrt(2 * n_pulses))
    assert torch.all((steps.mean(0) - state.dw_up).abs() <= 5 * expected / math.sqrt(n_pulses))
