"""pulsed_update_: expected update, per-sample order, floating-point update, seeds, back-end choice."""

from __future__ import annotations

import math

import pytest
import torch
from update_testkit import (
    BACKENDS,
    NO_D2D,
    constant_exact,
    count_moments,
    repeat_updates,
)

import analogkit.devices as D
from analogkit.update import UpdateConfig, kernels, pulsed_update_, select_backend

DW = 0.001


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("um", [True, False])
def test_mean_update_is_minus_lr_d_xT(backend, um):
    """Constant step without d2d/c2c, bounds far away: Δw = dw_min·(signed count) exactly, so
    E[Δw] = dw_min·Σ_n BL_n·p·q·(−sign) = −lr·Σ_n d_n x_nᵀ when no probability clips (checked).
    Per element the mean over R runs has SE = dw_min·sqrt(Σ_n BL_n·pq(1−pq)/R); 5 SE."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 6, generator=gen)
    d = torch.randn(3, 4, generator=gen)
    x = 0.7 * x / x.abs().amax(1, keepdim=True)  # max|x_n| = max|d_n|: no clipping even with A = B
    d = 0.7 * d / d.abs().amax(1, keepdim=True)
    d[1] *= 0.1  # (except without update management, where this sample's x probabilities clip)
    lr, reps = 0.05, 400
    cfg = UpdateConfig(update_management=um, backend=backend, desired_bl=63)
    dev = constant_exact(DW)
    state0 = dev.build_state((4, 6), gen)
    w, _ = repeat_updates(dev, state0, x, d, lr, cfg, reps, seed=1)
    dw = (w - state0.w).double().mean(0)
    mean, var = count_moments(x, d, lr, DW, cfg)
    want = -lr * d.double().t() @ x.double()
    if um:
        torch.testing.assert_close(DW * mean, want)  # nothing clips: the count formula is −lr·d xᵀ
    else:
        assert not torch.allclose(DW * mean, want)  # clipped probabilities lose part of the update
    se = DW * torch.sqrt(var / reps)
    assert ((dw - DW * mean).abs() <= 5 * se).all(), ((dw - DW * mean) / se).abs().max()
    # and the spread of Δw is that of the counts (sum of binomials): compare pooled variances
    emp = (w - state0.w).double().var(0)
    ratio = (emp / (DW**2 * var)).mean()
    assert abs(ratio - 1) < 0.1  # 24 elements × 400 runs: SE of the pooled ratio ≈ 0.015


@pytest.mark.parametrize("backend", BACKENDS)
def test_pulse_type_none_is_the_exact_clipped_fp_update(backend):
    gen = torch.Generator().manual_seed(2)
    dev = D.SoftBoundsDevice(write_noise_std=1.0)
    state = dev.build_state((5, 7), gen)
    dev.set_weights(state, 0.5 * torch.randn(5, 7, generator=gen), gen)
    before = state.clone()
    x, d = torch.randn(4, 7, generator=gen), torch.randn(4, 5, generator=gen)
    stats = pulsed_update_(dev, state, x, d, 0.1, UpdateConfig(pulse_type="none", backend=backend), gen)
    want = torch.minimum(torch.maximum(before.w - 0.1 * d.t() @ x, before.w_min), before.w_max)
    torch.testing.assert_close(state.w, want, rtol=0, atol=1e-6)
    assert (want == before.w_max).any() and (want == before.w_min).any()  # clipping was exercised
    assert stats.backend == "fp" and stats.pulses == 0
    assert torch.equal(state.extra["write_noise"], before.extra["write_noise"])


def _soft(dw=0.05, w_max=1.0, w_min=-1.0) -> D.SoftBoundsDevice:
    return D.SoftBoundsDevice(dw_min=dw, dw_min_std=0.0, w_max=w_max, w_min=w_min, **NO_D2D)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("application", ["exact", "closed_form"])
def test_samples_are_applied_in_order(backend, application):
    """One soft-bounds element near its upper bound; sample 1 gives BL up pulses, sample 2 BL down
    pulses (|x| = |d| = 1 and lr large: p = q = 1, count = BL = 31). Without noise both the loop and
    the closed form are exact, and ups-then-downs differ from downs-then-ups."""
    dev = _soft()
    up = lambda w: w + 0.05 * (1 - w / 1.0)
    down = lambda w: w - 0.05 * (1 - w / -1.0)

    def run(seq):
        w = 0.9
        for f in seq:
            for _ in range(31):
                w = min(max(f(w), -1.0), 1.0)
        return w

    gen = torch.Generator().manual_seed(0)
    x = torch.ones(2, 1)
    cfg = UpdateConfig(backend=backend, pulse_application=application)
    for d_signs, seq in ((( -1.0, 1.0), (up, down)), ((1.0, -1.0), (down, up))):
        state = dev.build_state((1, 1), gen)
        dev.set_weights(state, torch.full((1, 1), 0.9))
        d = torch.tensor(d_signs)[:, None]
        stats = pulsed_update_(dev, state, x, d, 5.0, cfg, gen)
        assert stats.bl.tolist() == [31, 31] and stats.pulses == 62
        assert state.w.item() == pytest.approx(run(seq), abs=1e-6)  # float32 state
    assert abs(run((up, down)) - run((down, up))) > 0.05


@pytest.mark.parametrize("backend", BACKENDS)
def test_constant_step_clips_per_sample(backend):
    """Hard bounds act between samples: at w_max, 31 up pulses are lost, then 31 down pulses count."""
    dev = D.ConstantStepDevice(dw_min=0.01, dw_min_std=0.0, w_max=0.2, w_min=-0.2, **NO_D2D)
    gen = torch.Generator().manual_seed(0)
    state = dev.build_state((1, 1), gen)
    dev.set_weights(state, torch.full((1, 1), 0.15))
    pulsed_update_(dev, state, torch.ones(2, 1), torch.tensor([[-1.0], [1.0]]), 5.0, UpdateConfig(backend=backend), gen)
    assert state.w.item() == pytest.approx(0.2 - 0.31, abs=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_runs_repeat_from_the_generator_state(backend):
    dev = D.SoftBoundsDevice(write_noise_std=0.5)
    x, d = torch.randn(8, 10), 0.1 * torch.randn(8, 6)
    cfg = UpdateConfig(backend=backend)
    results = []
    for seed in (11, 11, 12):
        gen = torch.Generator().manual_seed(seed)
        state = dev.build_state((6, 10), gen)
        pulsed_update_(dev, state, x, d, 0.05, cfg, gen)
        results.append(state)
    assert torch.equal(results[0].w, results[1].w)
    assert torch.equal(results[0].extra["write_noise"], results[1].extra["write_noise"])
    assert not torch.equal(results[0].w, results[2].w)


@pytest.mark.parametrize("backend", BACKENDS)
def test_write_noise_is_redrawn_where_pulsed_only(backend):
    dev = D.LinearStepDevice(write_noise_std=2.0, gamma_up=0.1, gamma_down=0.1)
    gen = torch.Generator().manual_seed(4)
    state = dev.build_state((6, 5), gen)
    before = state.clone()
    x = torch.tensor([[1.0, 0.0, -0.5, 0.0, 0.8]])  # columns 1 and 3 never fire
    d = torch.tensor([[0.3, 0.0, -0.2, 0.4, 0.0, 0.1]])  # rows 1 and 4 never fire
    pulsed_update_(dev, state, x, d, 0.5, UpdateConfig(backend=backend), gen)
    moved = state.w != before.w
    renewed = state.extra["write_noise"] != before.extra["write_noise"]
    quiet = torch.zeros(6, 5, dtype=torch.bool)
    quiet[:, [1, 3]] = True
    quiet[[1, 4], :] = True
    assert not renewed[quiet].any() and not moved[quiet].any()
    assert renewed[moved].all()
    assert moved[~quiet].float().mean() > 0.5  # lr 0.5: most active elements got pulses
    scale = dev.write_noise_scale
    assert state.extra["write_noise"][renewed].abs().max() < 6 * scale


class _OwnStep(D.ExpStepDevice):
    """A device with its own step rule: no kernel covers it."""

    kind = ""

    def _mean_std_dir(self, state, w, up):
        m, s = super()._mean_std_dir(state, w, up)
        return 0.5 * m, s


def test_backend_choice_and_fallback():
    gen = torch.Generator().manual_seed(0)
    own = _OwnStep()
    st = own.build_state((3, 4), gen)
    assert select_backend(own, st, UpdateConfig()) == "torch"
    with pytest.raises(ValueError, match=r"UpdateConfig\.backend: 'numba' is not allowed for _OwnStep"):
        select_backend(own, st, UpdateConfig(backend="numba"))
    stats = pulsed_update_(own, st, torch.randn(2, 4), torch.randn(2, 3), 0.1, UpdateConfig(), gen)
    assert stats.backend == "torch" and stats.pulses > 0
    if kernels.HAVE_NUMBA:
        for dev in (D.ConstantStepDevice(), D.SoftBoundsDevice(), D.SoftBoundsPmaxDevice(), D.LinearStepDevice(),
                    D.SoftBoundsReferenceDevice(), D.IdealDevice(), D.ExpStepDevice(), D.PowStepDevice(),
                    D.PowStepReferenceDevice(), D.PiecewiseStepDevice()):
            assert select_backend(dev, dev.build_state((2, 2), gen), UpdateConfig()) == "numba", dev.kind
    assert select_backend(D.ConstantStepDevice(), D.ConstantStepDevice().build_state((2, 2), gen),
                          UpdateConfig(backend="torch")) == "torch"


def test_a_subclass_that_changes_the_physics_is_not_given_to_the_kernel():
    class Odd(D.ConstantStepDevice):
        kind = ""

        def _mean_std_dir(self, state, w, up):
            m, s = super()._mean_std_dir(state, w, up)
            return 2 * m, s

    gen = torch.Generator().manual_seed(0)
    assert not kernels.kernel_supported(Odd(), Odd().build_state((2, 2), gen))


def test_input_checks():
    dev = D.ConstantStepDevice()
    gen = torch.Generator().manual_seed(0)
    st = dev.build_state((3, 4), gen)
    cfg = UpdateConfig()
    with pytest.raises(ValueError, match="state.w has shape"):
        pulsed_update_(dev, st, torch.randn(2, 5), torch.randn(2, 3), 0.1, cfg, gen)
    with pytest.raises(ValueError, match="lr"):
        pulsed_update_(dev, st, torch.randn(2, 4), torch.randn(2, 3), -0.1, cfg, gen)
    with pytest.raises(ValueError, match="dw_min"):
        pulsed_update_(dev, st, torch.randn(2, 4), torch.randn(2, 3), 0.1, cfg, gen, dw_min=0.0)
    with pytest.raises(TypeError, match="UpdateConfig"):
        pulsed_update_(dev, st, torch.randn(2, 4), torch.randn(2, 3), 0.1, {"desired_bl": 3}, gen)
    with pytest.raises(ValueError, match="lr"):
        pulsed_update_(dev, st, torch.randn(2, 4), torch.randn(2, 3), "fast", cfg, gen)
    before = st.w.clone()
    stats = pulsed_update_(dev, st, torch.randn(2, 4), torch.randn(2, 3), torch.tensor(0.0), cfg, gen)  # tensor lr
    assert stats.pulses == 0
    stats = pulsed_update_(dev, st, torch.zeros(0, 4), torch.zeros(0, 3), 0.1, cfg, gen)
    assert stats.pulses == 0 and torch.equal(st.w, before)
    stats = pulsed_update_(dev, st, torch.randn(2, 4), torch.randn(2, 3), 0.0, cfg, gen)
    assert stats.pulses == 0 and stats.skipped == 2 and torch.equal(st.w, before)


@pytest.mark.parametrize("backend", BACKENDS)
def test_dw_min_argument_sets_the_planning_step(backend):
    """Planning with a larger dw_min than the device's halves the expected count (BL management off)."""
    dev = constant_exact(DW)
    gen = torch.Generator().manual_seed(0)
    st = dev.build_state((1, 1), gen)
    x, d = torch.full((400, 1), 0.5), torch.full((400, 1), -0.5)
    cfg = UpdateConfig(update_bl_management=False, backend=backend)
    pulsed_update_(dev, st, x, d, 0.031, cfg, gen, dw_min=2 * DW)
    # A = B = sqrt(0.031/(0.002·31)) = sqrt(0.5): p = q = 0.5·sqrt(0.5), E[count] = 31·0.125 per sample
    mean = st.w.item() / DW / 400
    assert abs(mean - 31 * 0.125) < 5 * math.sqrt(31 * 0.125 * 0.875 / 400)


@pytest.mark.parametrize("backend", BACKENDS)
def test_changed_device_parameters_are_seen(backend):
    """The kernel keeps a packed copy of the d2d parameters; changing them in place must be honoured."""
    dev = D.ConstantStepDevice(dw_min=0.01, dw_min_std=0.0, **NO_D2D)
    gen = torch.Generator().manual_seed(0)
    state = dev.build_state((4, 3), gen)
    x, d = torch.ones(2, 3), -torch.ones(2, 4)  # every element goes up by BL = 31 pulses per sample
    cfg = UpdateConfig(backend=backend)
    pulsed_update_(dev, state, x, d, 5.0, cfg, gen)
    assert torch.allclose(state.w, torch.full((4, 3), 0.6))  # reached w_max = 0.6
    state.w_max.fill_(0.05)  # in place, as load_state_dict would
    state.dw_up.fill_(0.001)
    dev.set_weights(state, torch.zeros(4, 3), gen)
    pulsed_update_(dev, state, x[:1], d[:1], 5.0, cfg, gen)
    assert torch.allclose(state.w, torch.full((4, 3), 0.031))  # the new step
    pulsed_update_(dev, state, x, d, 5.0, cfg, gen)
    assert torch.allclose(state.w, torch.full((4, 3), 0.05))  # the new bound


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_contiguous_state_views(backend):
    """A state made of strided views (e.g. part of a larger buffer) is updated in place, with the
    same result as a contiguous copy of it."""
    dev = D.SoftBoundsDevice(write_noise_std=1.0)
    gen = torch.Generator().manual_seed(0)
    big = dev.build_state((6, 10), gen)
    view = big._map(lambda t: t[:, 2:9])
    assert not view.w.is_contiguous()
    copy = view.clone()
    before = view.w.clone()
    x, d = torch.randn(5, 7, generator=gen), 0.1 * torch.randn(5, 6, generator=gen)
    cfg = UpdateConfig(backend=backend)
    pulsed_update_(dev, view, x, d, 0.05, cfg, torch.Generator().manual_seed(9))
    pulsed_update_(dev, copy, x, d, 0.05, cfg, torch.Generator().manual_seed(9))
    assert torch.equal(big.w[:, 2:9], copy.w)
    assert torch.equal(big.extra["write_noise"][:, 2:9], copy.extra["write_noise"])
    assert not torch.equal(view.w, before)  # the views were written


@pytest.mark.parametrize("backend", BACKENDS)
def test_samples_with_nan_are_skipped(backend):
    dev = D.ConstantStepDevice()
    gen = torch.Generator().manual_seed(0)
    state = dev.build_state((3, 4), gen)
    before = state.w.clone()
    x = torch.ones(2, 4)
    x[0, 1] = float("nan")
    d = torch.ones(2, 3)
    d[1, 2] = float("nan")
    stats = pulsed_update_(dev, state, x, d, 1.0, UpdateConfig(backend=backend), gen)
    assert stats.skipped == 2 and stats.pulses == 0
    assert torch.equal(state.w, before)
