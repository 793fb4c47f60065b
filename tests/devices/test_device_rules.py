"""Each device's update-once rule: mean and c2c std of one pulse vs w, against the closed-form rule."""

from __future__ import annotations

import math

import pytest
import torch

import analogkit.devices as D
from device_testkit import rule_cases, visible_range

CASES = rule_cases()

# Sample size per grid point. The mean of N Gaussian increments has standard error s/√N and the
# sample std has standard error ≈ s/√(2N); we allow 5 standard errors (a false alarm per
# comparison has probability < 1e-6) plus a float32 rounding allowance of 2e-6·|w|.
N = 4000
N_GRID = 7


def _measure(dev: D.Device, w_grid: torch.Tensor, up: bool, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    state = dev.build_state((N_GRID, N), gen)
    dev.set_weights(state, w_grid[:, None].expand(N_GRID, N).to(state.dtype).contiguous(), gen)
    before = state.w.clone()
    direction = torch.full((N_GRID, N), 1 if up else -1, dtype=torch.int8)
    dev.pulse(state, direction, gen)
    dw = (state.w - before).double()
    return dw.mean(1), dw.std(1)


@pytest.mark.parametrize("up", [True, False], ids=["up", "down"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_device_step_mean_and_std_follow_rule(case: str, up: bool) -> None:
    dev, rule = CASES[case]
    lo, hi = visible_range(dev)
    # stay inside the range so that no step of ±5 std reaches a bound (no clipping)
    w_grid = torch.linspace(lo + 0.15 * (hi - lo), hi - 0.15 * (hi - lo), N_GRID, dtype=torch.float64)
    mean_ref, std_ref = rule(w_grid, up)
    assert bool(((w_grid + mean_ref + 5 * std_ref < hi) & (w_grid + mean_ref - 5 * std_ref > lo)).all())
    mean, std = _measure(dev, w_grid, up, seed=11 if up else 12)
    float_tol = 2e-6 * w_grid.abs() + 1e-9
    assert torch.all((mean - mean_ref).abs() <= 5 * std_ref / math.sqrt(N) + float_tol), (mean, mean_ref)
    assert torch.all((std - std_ref).abs() <= 5 * std_ref / math.sqrt(2 * N) + float_tol), (std, std_ref)


@pytest.mark.parametrize("case", sorted(CASES))
def test_device_step_stats_is_the_rule(case: str) -> None:
    dev, rule = CASES[case]
    lo, hi = visible_range(dev)
    gen = torch.Generator().manual_seed(0)
    state = dev.build_state((9,), gen, dtype=torch.float64)
    w = torch.linspace(lo + 0.05 * (hi - lo), hi - 0.05 * (hi - lo), 9, dtype=torch.float64)
    dev.set_weights(state, w, gen)
    for direction in (1, -1):
        mean, std = dev.step_stats(state, direction)
        mean_ref, std_ref = rule(w, direction > 0)
        torch.testing.assert_close(mean, mean_ref, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(std, std_ref, rtol=1e-9, atol=1e-12)


def test_device_step_stats_rejects_zero_direction() -> None:
    dev = D.ConstantStepDevice()
    state = dev.build_state((2,), torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="direction"):
        dev.step_stats(state, 0)


def test_device_zero_direction_leaves_weight_alone() -> None:
    dev = D.SoftBoundsDevice(write_noise_std=2.0)
    gen = torch.Generator().manual_seed(3)
    state = dev.build_state((50,), gen)
    dev.set_weights(state, torch.linspace(-0.3, 0.3, 50), gen)
    before, noise_before = state.w.clone(), state.write_noise.clone()
    direction = torch.zeros(50, dtype=torch.int8)
    direction[::2] = 1
    dev.pulse(state, direction, gen)
    assert torch.equal(state.w[1::2], before[1::2])
    assert torch.equal(state.write_noise[1::2], noise_before[1::2])  # untouched elements keep their write noise
    assert not torch.equal(state.w[::2], before[::2])
