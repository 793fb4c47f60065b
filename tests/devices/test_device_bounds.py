"""Weights stay inside each element's bounds for arbitrary pulse sequences, for every registered device;
bounds saturate; corrupted devices never move."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import analogkit.devices as D
from device_testkit import NO_D2D, small_bounded_config, visible_range

SHAPE = (3, 4)

_counts = st.lists(st.integers(-20, 20), min_size=12, max_size=12)
_op = st.one_of(
    st.tuples(st.just("pulse_n"), _counts, st.sampled_from(["auto", "loop", "closed_form"])),
    st.tuples(st.just("pulse"), st.lists(st.integers(-1, 1), min_size=12, max_size=12), st.just("")),
    st.tuples(st.sampled_from(["decay", "diffuse"]), st.just([]), st.just("")),
    st.tuples(st.just("reset"), st.lists(st.booleans(), min_size=12, max_size=12), st.just("")),
)


def _check_inside(state: D.DeviceState, where: str) -> None:
    assert torch.isfinite(state.w).all(), where
    assert torch.all(state.w_min <= state.w_max), where
    assert torch.all(state.w >= state.w_min) and torch.all(state.w <= state.w_max), (where, state.w, state.w_min, state.w_max)


@pytest.mark.parametrize("kind", list(D.DEVICES))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), ops=st.lists(_op, min_size=1, max_size=5))
def test_device_weights_stay_within_bounds(kind: str, seed: int, ops: list) -> None:
    dev = small_bounded_config(kind)
    gen = torch.Generator().manual_seed(seed)
    state = dev.build_state(SHAPE, gen)
    _check_inside(state, "build")
    for name, arg, method in ops:
        if name == "pulse_n":
            counts = torch.tensor(arg, dtype=torch.int32).reshape(SHAPE)
            if method == "closed_form" and not isinstance(dev, (D.AffineStepDevice, D.IdealDevice)):
                method = "loop"
            dev.pulse_n(state, counts, gen, method=method)
        elif name == "pulse":
            dev.pulse(state, torch.tensor(arg, dtype=torch.int8).reshape(SHAPE), gen)
        elif name == "decay":
            dev.decay(state, gen)
        elif name == "diffuse":
            dev.diffuse(state, gen)
        else:
            dev.reset_devices(state, torch.tensor(arg).reshape(SHAPE), gen)
        _check_inside(state, name)


@pytest.mark.parametrize("kind", [k for k in D.DEVICES if k != "ideal"])
def test_device_saturates_at_bounds(kind: str) -> None:
    """600 pulses of step 0.05 (soft bounds: (1 − 0.05)^600 ≈ e⁻³⁰) drive the mean to within 10 % of the
    range from the bound (additive c2c noise keeps soft-bound devices a few σ√(Δw·b) below it);
    no element ever leaves its range."""
    cls = D.DEVICES.get(kind)
    kwargs = dict(NO_D2D, dw_min_std=0.3, reset_std=0.0)
    if kind == "soft_bounds_pmax":
        dev = cls(p_max=40, alpha=0.05, **kwargs)
    else:
        dev = cls(dw_min=0.05, w_max=1.0, w_min=-1.0, **kwargs)
    lo, hi = visible_range(dev)
    gen = torch.Generator().manual_seed(0)
    for sign, bound in ((1, hi), (-1, lo)):
        state = dev.build_state((2000,), gen)
        dev.pulse_n(state, torch.full((2000,), sign * 600), gen)
        assert torch.all((state.w >= lo) & (state.w <= hi))
        assert abs(state.w.mean().item() - bound) <= 0.1 * (hi - lo), (kind, sign, state.w.mean(), bound)


def test_device_ideal_bounds_optional() -> None:
    gen = torch.Generator().manual_seed(0)
    free, boxed = D.IdealDevice(dw_min=0.1), D.IdealDevice(dw_min=0.1, bounded=True, w_max=0.5, w_min=-0.3)
    s_free, s_boxed = free.build_state((2,), gen), boxed.build_state((2,), gen)
    counts = torch.tensor([20, -20])
    free.pulse_n(s_free, counts, gen)
    boxed.pulse_n(s_boxed, counts, gen)
    torch.testing.assert_close(s_free.w, torch.tensor([2.0, -2.0]))
    torch.testing.assert_close(s_boxed.w, torch.tensor([0.5, -0.3]))


def test_device_corrupt_devices_are_stuck() -> None:
    """corrupt_devices_prob = 0.3 over 20000 elements: the stuck fraction is within 5 binomial standard
    errors (5·sqrt(0.3·0.7/20000) ≈ 0.016); stuck devices have equal bounds in ±range and never move."""
    dev = D.SoftBoundsDevice(corrupt_devices_prob=0.3, corrupt_devices_range=0.05)
    gen = torch.Generator().manual_seed(4)
    state = dev.build_state((20000,), gen)
    stuck = state.dw_up == 0
    assert abs(stuck.float().mean().item() - 0.3) <= 5 * (0.3 * 0.7 / 20000) ** 0.5
    assert torch.all(state.w_max[stuck] == state.w_min[stuck])
    assert torch.all(state.w_max[stuck].abs() <= 0.05)
    before = state.w[stuck].clone()
    dev.pulse_n(state, torch.full((20000,), 17), gen)
    dev.pulse(state, torch.full((20000,), -1, dtype=torch.int8), gen)
    assert torch.equal(state.w[stuck], before)
