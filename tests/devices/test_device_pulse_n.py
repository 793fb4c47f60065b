"""pulse_n(counts) against |counts| single pulses: in distribution, exactly without noise, mixed counts."""

from __future__ import annotations

import math

import pytest
import torch

import analogkit.devices as D
from device_testkit import rule_cases, visible_range

CASES = rule_cases()

# Two independent samples of N final weights each; the difference of their means has standard
# error sqrt(s1²/N + s2²/N), that of their stds ≈ sqrt(s1²/(2N) + s2²/(2N)). 5 standard errors.
N = 20000
N_PULSES = 9


def _sequential(dev: D.Device, state: D.DeviceState, counts: torch.Tensor, gen: torch.Generator) -> None:
    """Reference: apply the pulses one slot at a time with pulse()."""
    for k in range(1, int(counts.abs().max()) + 1):
        direction = torch.where(counts.abs() >= k, counts.sign(), torch.zeros_like(counts)).to(torch.int8)
        dev.pulse(state, direction, gen)


def _start(dev: D.Device, w0: float, seed: int, shape=(N,)) -> tuple[D.DeviceState, torch.Generator]:
    gen = torch.Generator().manual_seed(seed)
    state = dev.build_state(shape, gen)
    dev.set_weights(state, torch.full(shape, w0), gen)
    return state, gen


def _compare(a: torch.Tensor, b: torch.Tensor, label: str) -> None:
    a, b = a.double(), b.double()
    n = a.numel()
    se_mean = math.sqrt((a.var() + b.var()) / n)
    se_std = math.sqrt((a.var() + b.var()) / (2 * n))
    assert abs(a.mean() - b.mean()) <= 5 * se_mean + 1e-7, (label, a.mean(), b.mean(), se_mean)
    assert abs(a.std() - b.std()) <= 5 * se_std + 1e-7, (label, a.std(), b.std(), se_std)


def _methods(dev: D.Device) -> list[str]:
    return ["auto", "loop", "closed_form"] if isinstance(dev, (D.AffineStepDevice, D.IdealDevice)) else ["auto", "loop"]


@pytest.mark.parametrize("sign", [1, -1], ids=["up", "down"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_device_pulse_n_matches_single_pulses_in_distribution(case: str, sign: int) -> None:
    dev, _ = CASES[case]
    lo, hi = visible_range(dev)
    w0 = lo + 0.5 * (hi - lo)  # mid-range: 9 pulses do not reach a bound, so every method is exact here
    counts = torch.full((N,), sign * N_PULSES, dtype=torch.int32)
    ref, gen = _start(dev, w0, seed=1)
    _sequential(dev, ref, counts, gen)
    for i, method in enumerate(_methods(dev)):
        state, gen = _start(dev, w0, seed=100 + i)
        dev.pulse_n(state, counts, gen, method=method)
        _compare(state.w, ref.w, f"{case} {method}")


DETERMINISTIC = {
    "constant_step": D.ConstantStepDevice(dw_min=0.05, dw_min_std=0.0, up_down=0.2),
    "linear_step": D.LinearStepDevice(dw_min=0.05, dw_min_std=0.0, gamma_up=0.5, gamma_down=0.3),
    "soft_bounds": D.SoftBoundsDevice(dw_min=0.05, dw_min_std=0.0, up_down=-0.3),
    "soft_bounds_reference": D.SoftBoundsReferenceDevice(dw_min=0.05, dw_min_std=0.0, reference_std=0.1, subtract_symmetry_point=True),
    "exp_step": D.ExpStepDevice(dw_min=0.05, dw_min_std=0.0),
    "pow_step": D.PowStepDevice(dw_min=0.05, dw_min_std=0.0, pow_gamma=2.0),
    "piecewise_step": D.PiecewiseStepDevice(dw_min=0.05, dw_min_std=0.0, piecewise_up=[2, 1, 0.2], piecewise_down=[0.2, 1, 3]),
    "ideal": D.IdealDevice(dw_min=0.05, bounded=True),
}


@pytest.mark.parametrize("case", sorted(DETERMINISTIC))
def test_device_pulse_n_without_noise_equals_sequential_pulses(case: str) -> None:
    """With no c2c noise the loop (and any exact closed form) must reproduce pulse() step for step,
    including saturation at the bounds and mixed counts in one call."""
    dev = DETERMINISTIC[case]
    gen = torch.Generator().manual_seed(5)
    state = dev.build_state((40, 30), gen, dtype=torch.float64)  # d2d variation on: every element differs
    counts = torch.randint(-45, 46, (40, 30), generator=gen)
    ref = state.clone()
    _sequential(dev, ref, counts, gen)
    for method in _methods(dev):
        if method == "closed_form" and dev.pulse_n_method(state) != "closed_form":
            continue  # not exact for this state (e.g. overshooting steps); covered by the distribution tests
        st = state.clone()
        dev.pulse_n(st, counts, gen, method=method)
        torch.testing.assert_close(st.w, ref.w, rtol=0, atol=1e-10, msg=f"{case} {method}")


def test_device_pulse_n_auto_uses_closed_form_only_where_exact() -> None:
    gen = torch.Generator().manual_seed(0)
    small = D.ConstantStepDevice(dw_min_std=0.3)
    big = D.ConstantStepDevice(dw_min_std=1.0)  # reversing steps are common: loop
    sb = D.SoftBoundsDevice()
    sb_quiet = D.SoftBoundsDevice(dw_min_std=0.0)
    assert small.pulse_n_method(small.build_state((4,), gen)) == "closed_form"
    assert big.pulse_n_method(big.build_state((4,), gen)) == "loop"
    assert sb.pulse_n_method(sb.build_state((4,), gen)) == "loop"
    assert sb_quiet.pulse_n_method(sb_quiet.build_state((4,), gen)) == "closed_form"
    assert D.ExpStepDevice(dw_min_std=0.0).pulse_n_method(D.ExpStepDevice().build_state((4,), gen)) == "loop"


def test_device_pulse_n_mixed_counts_match_per_count() -> None:
    """Heterogeneous counts in one call (the sorted-prefix loop): each count group has the law of
    that many single pulses. 13 groups of ~4600 elements; 5 standard errors per group."""
    dev = D.SoftBoundsDevice(dw_min=0.02, dw_min_std=0.5, **{"dw_min_dtod": 0.0, "up_down_dtod": 0.0, "w_max_dtod": 0.0, "w_min_dtod": 0.0})
    gen = torch.Generator().manual_seed(7)
    counts = torch.randint(-6, 7, (60000,), generator=gen)
    st = dev.build_state(counts.shape, gen)
    dev.pulse_n(st, counts, gen, method="loop")
    ref = dev.build_state(counts.shape, gen)
    _sequential(dev, ref, counts, gen)
    for c in range(-6, 7):
        m = counts == c
        if c == 0:
            assert torch.all(st.w[m] == 0)
        else:
            _compare(st.w[m], ref.w[m], f"count {c}")


@pytest.mark.parametrize("dtype", [torch.int8, torch.int16, torch.int32, torch.int64])
def test_device_pulse_n_accepts_integer_dtypes(dtype: torch.dtype) -> None:
    dev = D.IdealDevice(dw_min=0.1)
    state = dev.build_state((3,), torch.Generator().manual_seed(0))
    dev.pulse_n(state, torch.tensor([-128 if dtype == torch.int8 else -200, 0, 3], dtype=dtype))
    expected = torch.tensor([-12.8 if dtype == torch.int8 else -20.0, 0.0, 0.3])
    torch.testing.assert_close(state.w, expected)


def test_device_pulse_n_rejects_bad_input() -> None:
    dev = D.SoftBoundsDevice()
    gen = torch.Generator().manual_seed(0)
    state = dev.build_state((2, 3), gen)
    with pytest.raises(ValueError, match="shape"):
        dev.pulse_n(state, torch.zeros(3, 2, dtype=torch.int32), gen)
    with pytest.raises(ValueError, match="integer"):
        dev.pulse_n(state, torch.zeros(2, 3), gen)
    with pytest.raises(ValueError, match="method"):
        dev.pulse_n(state, torch.zeros(2, 3, dtype=torch.int32), gen, method="fast")
    with pytest.raises(ValueError, match="closed_form"):
        D.ExpStepDevice().pulse_n(D.ExpStepDevice().build_state((2, 3), gen), torch.ones(2, 3, dtype=torch.int32), gen, method="closed_form")


def test_device_constant_step_closed_form_sum_law() -> None:
    """n steps Δw(1+σξ_k) sum to nΔw + σΔw√n·ξ: check mean and std against the formula."""
    dw, sigma, n = 0.01, 0.3, 25
    dev = D.ConstantStepDevice(dw_min=dw, dw_min_std=sigma, dw_min_dtod=0.0, up_down_dtod=0.0, w_max=1.0, w_min=-1.0,
                               w_max_dtod=0.0, w_min_dtod=0.0)
    gen = torch.Generator().manual_seed(2)
    state = dev.build_state((N,), gen, dtype=torch.float64)
    dev.pulse_n(state, torch.full((N,), n), gen)
    s = sigma * dw * math.sqrt(n)
    assert abs(state.w.mean().item() - n * dw) <= 5 * s / math.sqrt(N)
    assert abs(state.w.std().item() - s) <= 5 * s / math.sqrt(2 * N)


def test_device_soft_bounds_closed_form_mean_is_geometric() -> None:
    """Mean after n pulses: w_n = b − (b − w₀)(1 − Δw/b)^n (exact, also with noise)."""
    dw, b, n, w0 = 0.05, 1.0, 30, -0.2
    dev = D.SoftBoundsDevice(dw_min=dw, dw_min_std=0.2, dw_min_dtod=0.0, up_down_dtod=0.0, w_max=b, w_min=-b,
                             w_max_dtod=0.0, w_min_dtod=0.0)
    state, gen = _start(dev, w0, seed=3)
    dev.pulse_n(state, torch.full((N,), n), gen, method="loop")
    expected = b - (b - w0) * (1 - dw / b) ** n
    se = state.w.double().std().item() / math.sqrt(N)
    assert abs(state.w.double().mean().item() - expected) <= 5 * se + 1e-6
