"""The non-linear-step numba kernel (analogkit.update.kernels_step) against the PyTorch reference.

Same method as test_update_backends.py: both back-ends start from one device state (d2d variation,
c2c noise, elements next to both bounds) and apply the same (x, d) R times with independent draws;
per element the means and variances of Δw (and of the write noise) must agree within 5 standard
errors. The problems mix dense samples (most columns fire: counted in one pass over the row) and
sparse ones (a few firing columns), which the kernel batches while no column repeats.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from update_testkit import deterministic_pair, many_dense_samples, repeat_updates

import analogkit.devices as D
from analogkit.devices import DEVICE_PRESETS
from analogkit.update import (
    UpdateConfig,
    kernels,
    kernels_step,
    pulsed_update_,
    select_backend,
)

pytestmark = pytest.mark.skipif(not kernels_step.HAVE_NUMBA, reason="numba not installed")

REPS = 200

DEVICES = {
    "exp_step": D.ExpStepDevice(),
    "reram_es": DEVICE_PRESETS.get("reram_es")(),  # write noise
    "pcm": DEVICE_PRESETS.get("pcm")(),  # complex (additive) c2c noise, w in [0, 2]
    "exp_step_complex_noise": D.ExpStepDevice(dw_min_std_add=0.005, dw_min_std_slope=0.01),  # and w < 0
    # steep and with negative A: steps explode towards the bounds and γz reaches the clamp at 60
    "exp_step_steep": D.ExpStepDevice(A_up=-0.5, A_down=-0.5, gamma_up=80.0, gamma_down=80.0, a=1.0, b=0.0),
    "pow_step": D.PowStepDevice(pow_gamma=1.6, pow_gamma_dtod=0.2, pow_up_down=0.3, pow_up_down_dtod=0.05,
                                write_noise_std=1.0),
    "pow_step_reference": D.PowStepReferenceDevice(pow_gamma=0.7, reference_std=0.05, subtract_symmetry_point=True),
    "piecewise_step": D.PiecewiseStepDevice(piecewise_up=[0.3, 1.0, 1.6, 0.8, 0.1], piecewise_down=[1.5, 1.2, 0.6, 0.4, 0.2],
                                            dw_min_std=0.5),
    "piecewise_step_one_node": D.PiecewiseStepDevice(piecewise_up=[1.2], piecewise_down=[0.8]),
}


def _compare(a: torch.Tensor, b: torch.Tensor, label: str) -> None:
    """Per element: |Δmean| and |Δvariance| below 5 standard errors, as in test_update_backends.py,
    with the exact variance of the unbiased sample variance, Var(s²) = (m₄ − s⁴)/n + 2s⁴/(n(n − 1)):
    its first term alone vanishes for a two-point law with p = 1/2 (half the runs at a bound)."""
    n = a.shape[0]
    ma, mb = a.mean(0), b.mean(0)
    va, vb = a.var(0), b.var(0)
    z_m = (ma - mb).abs() / torch.sqrt((va + vb) / n).clamp(min=1e-15)
    assert (z_m < 5).all(), (label, "mean", z_m.max().item())
    m4a, m4b = ((a - ma) ** 4).mean(0), ((b - mb) ** 4).mean(0)
    var_va = (m4a - va**2).clamp(min=0) / n + 2 * va**2 / (n * (n - 1))
    var_vb = (m4b - vb**2).clamp(min=0) / n + 2 * vb**2 / (n * (n - 1))
    z_v = (va - vb).abs() / torch.sqrt(var_va + var_vb).clamp(min=1e-30)
    assert (z_v < 5).all(), (label, "variance", z_v.max().item())


def _problem(dev: D.Device, seed: int = 0, dtype: torch.dtype = torch.float32, n_in: int = 16):
    """State (6, n_in) with elements next to both bounds; 6 samples, dense and sparse ones."""
    gen = torch.Generator().manual_seed(seed)
    out = 6
    state = dev.build_state((out, n_in), gen, dtype=dtype)
    span = state.w_max - state.w_min
    w = 0.5 * (state.w_max + state.w_min) + 0.3 * span * (torch.rand(out, n_in, generator=gen, dtype=dtype) - 0.5)
    w[0] = state.w_max[0] - 2 * dev.dw_min  # next to the upper bound
    w[1, : n_in // 2] = state.w_min[1, : n_in // 2] + 2 * dev.dw_min  # next to the lower bound
    dev.set_weights(state, w, gen)
    x = torch.randn(6, n_in, generator=gen)
    x[2, 1:] = 0  # one firing column: sparse
    x[3, ::2] = 0  # half the columns: dense
    x[5, 3:] = 0  # three columns: sparse
    d = 20 * dev.dw_min * torch.randn(6, out, generator=gen)  # a few pulses per element and sample
    d[4] *= 0.01  # short trains
    return state, x, d


def _agree(dev: D.Device, state0: D.DeviceState, x: torch.Tensor, d: torch.Tensor, label: str, lr: float = 0.05,
           min_moved: float = 0.8, **cfg_kw) -> None:
    results = {}
    for backend in ("torch", "numba"):
        cfg = UpdateConfig(backend=backend, **cfg_kw)
        results[backend] = repeat_updates(dev, state0, x, d, lr, cfg, REPS, seed=5 if backend == "torch" else 6)
    wt, wnt = results["torch"]
    wk, wnk = results["numba"]
    assert wk.dtype == state0.w.dtype
    dwt, dwk = (wt - state0.w).double(), (wk - state0.w).double()
    assert dwt.abs().amax(0).gt(0).double().mean() > min_moved  # most elements get pulses
    _compare(dwt, dwk, label)
    if wnt.numel():
        _compare(wnt.double(), wnk.double(), f"{label} write noise")


@pytest.mark.parametrize("name", list(DEVICES))
def test_numba_and_torch_agree_in_mean_and_variance(name):
    dev = DEVICES[name]
    state0, x, d = _problem(dev)
    _agree(dev, state0, x, d, name)


#: The exponent clamp at 60 decides the step: A = e^{-65}, so 1 − A·e^{γz} is ≈ 0.99 with the clamp
#: and 0 without it wherever γz > 65 (z ≈ ±1 next to the bounds, γ = 80).
CLAMPED = D.ExpStepDevice(A_up=math.exp(-65), A_down=math.exp(-65), gamma_up=80.0, gamma_down=80.0, a=1.0, b=0.0)


@pytest.mark.parametrize("name", [*DEVICES, "exp_step_clamped"])
def test_deterministic_counts_without_noise_agree_to_rounding(name):
    """No c2c noise and deterministic counts (``deterministic_implicit``): the pulse sequence of every
    element is fixed, so both back-ends give the same weights up to float32 rounding."""
    dev = dataclasses.replace(CLAMPED if name == "exp_step_clamped" else DEVICES[name], dw_min_std=0.0)
    state0, x, d = _problem(dev)
    (wt, pt, _), (wk, pk, _) = deterministic_pair(dev, state0, x, d, 0.5)
    assert pt == pk > 0
    assert (wt != state0.w).double().mean() > 0.5
    span = float((state0.w_max - state0.w_min).max())
    torch.testing.assert_close(wk, wt, rtol=0, atol=1e-5 * span)
    if name == "exp_step_clamped":  # the clamp acted: elements next to a bound moved by ≈ 0.99·Δw per pulse
        z = 80.0 * 2 * state0.w / (state0.w_max - state0.w_min)
        assert bool((z.abs() > 65).any())


@pytest.mark.parametrize(("group_pulses", "full"), [(128, False), (33, False), (8, False), (128, True)])
@pytest.mark.parametrize("name", ["exp_step", "pow_step", "piecewise_step"])
def test_groups_of_dense_samples_keep_each_elements_order(monkeypatch, name, group_pulses, full):
    """Consecutive dense samples are applied as groups (one sort, direction streams): without noise
    and with deterministic counts every element's pulse sequence is fixed, so the weights agree
    with the reference to rounding, whatever the group size (8: a group ends at almost every
    sample, 33 and 128: groups with many changes of direction), and with full trains (31 pulses
    per element and sample: groups end at their pulse limit)."""
    monkeypatch.setattr(kernels, "GROUP_PULSES", group_pulses)
    dev = dataclasses.replace(DEVICES[name], dw_min_std=0.0)
    state0, x, d = many_dense_samples(dev, seed=3, full=full)
    (wt, pt, _), (wk, pk, _) = deterministic_pair(dev, state0, x, d, 0.5)
    assert pt == pk > 20 * wt.numel()  # long trains: several 32-pulse direction words per element
    span = float((state0.w_max - state0.w_min).max())
    torch.testing.assert_close(wk, wt, rtol=0, atol=1e-5 * span)


def test_trains_longer_than_a_direction_word(monkeypatch):
    """BL above 32 (counts that do not fit in one direction word): such dense samples are applied on
    their own, in order with the groups around them (deterministic counts, no noise: exact)."""
    dev = dataclasses.replace(DEVICES["exp_step"], dw_min_std=0.0)
    state0, x, d = many_dense_samples(dev, seed=4)
    x[::3] *= 0.05  # short trains: these samples form groups between the long ones
    (wt, pt, mt), (wk, pk, mk) = deterministic_pair(dev, state0, x, d, 2.0, desired_bl=60)
    assert pt == pk > 0 and mt == mk > 32
    span = float((state0.w_max - state0.w_min).max())
    torch.testing.assert_close(wk, wt, rtol=0, atol=1e-5 * span)


@pytest.mark.parametrize("name", ["reram_es", "pow_step", "piecewise_step"])
def test_groups_agree_in_mean_and_variance(monkeypatch, name):
    """Stochastic trains, c2c and write noise over a run of dense samples (groups of varying size,
    changes of direction inside them): per element statistics as the reference's."""
    monkeypatch.setattr(kernels, "GROUP_PULSES", 40)
    dev = DEVICES[name]
    state0, x, d = many_dense_samples(dev, seed=5, samples=8, n_in=12)
    _agree(dev, state0, x, d, f"{name}/groups")


@pytest.mark.parametrize("name", ["exp_step", "pcm"])
def test_one_hot_samples_are_batched_in_order(name):
    """One-hot samples (a transfer's or ``apply_counts_``' vector-samples) whose columns repeat: the
    kernel batches them until a column comes back, so every element still gets its samples in
    order. Without noise and with deterministic counts both back-ends agree to rounding."""
    dev = dataclasses.replace(DEVICES[name], dw_min_std=0.0)
    gen = torch.Generator().manual_seed(5)
    state0 = dev.build_state((5, 7), gen)
    cols = [0, 3, 5, 3, 6, 1, 0, 2, 2, 4]  # repeats: 3, 0 and 2 (twice in a row)
    x = torch.zeros(len(cols), 7)
    x[torch.arange(len(cols)), cols] = torch.tensor([1.0, -1.0] * 5)
    d = 20 * dev.dw_min * torch.randn(len(cols), 5, generator=gen)
    (wt, pt, _), (wk, pk, _) = deterministic_pair(dev, state0, x, d, 0.5)
    assert pt == pk > 0
    span = float((state0.w_max - state0.w_min).max())
    torch.testing.assert_close(wk, wt, rtol=0, atol=1e-5 * span)


@pytest.mark.parametrize("pulse_type", ["mean_count", "deterministic_implicit"])
def test_count_modes_agree(pulse_type):
    dev = DEVICES["pcm"]
    state0, x, d = _problem(dev, seed=1)
    _agree(dev, state0, x, d, pulse_type, pulse_type=pulse_type, min_moved=0.5)


def test_float64_states():
    dev = DEVICES["reram_es"]
    state0, x, d = _problem(dev, seed=2, dtype=torch.float64)
    _agree(dev, state0, x, d, "reram_es/float64")


def test_dense_rows_against_the_reference():
    """Every column and row fires in every slot (x = d = ±1): long trains of equal counts, the
    sorted passes only, from next to the upper bound (up pulses) for pcm's complex noise."""
    dev = DEVICES["pcm"]
    gen = torch.Generator().manual_seed(3)
    state0 = dev.build_state((4, 24), gen)
    dev.set_weights(state0, state0.w_max - 3 * dev.dw_min, gen)
    x = torch.ones(3, 24)
    x[1, ::3] = -1.0  # some down pulses
    d = -torch.ones(3, 4)
    _agree(dev, state0, x, d, "pcm/dense", lr=0.1)


def test_elements_without_range_do_not_move():
    """Where b^max <= b^min the device's mean and std are 0 (also the additive part of the complex
    noise): such elements keep their weight, in both back-ends."""
    dev = DEVICES["pcm"]
    gen = torch.Generator().manual_seed(4)
    state = dev.build_state((5, 12), gen)
    dev.set_weights(state, 0.5 * state.w_max, gen)
    state.w_max[:, :4] = state.w[:, :4]
    state.w_min[:, :4] = state.w[:, :4]
    x, d = torch.randn(4, 12, generator=gen), torch.randn(4, 5, generator=gen)
    for backend in ("torch", "numba"):
        st = state.clone()
        stats = pulsed_update_(dev, st, x, d, 0.05, UpdateConfig(backend=backend), torch.Generator().manual_seed(1))
        assert stats.pulses > 0
        assert torch.equal(st.w[:, :4], state.w[:, :4]), backend
        assert not torch.equal(st.w[:, 4:], state.w[:, 4:]), backend


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fexp_and_flog_accuracy(dtype):
    """The kernel's branch-free e^x and ln x are within 2 ulp of the exact values (numpy in extended
    precision) on their ranges; e^0 = 1 and ln 1 = 0 exactly."""
    ext = np.longdouble
    lo, hi = (-87.3, 88.0) if dtype == np.float32 else (-708.3, 709.0)
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(lo, hi, 200_000), rng.uniform(-1, 1, 100_000), rng.uniform(-1e-6, 1e-6, 1000),
                        np.linspace(-60, 60, 100_001), [0.0, lo, hi, 60.0]]).astype(dtype)
    got = kernels_step.fexp_array(x)
    assert got.dtype == dtype
    want = np.exp(x.astype(ext))
    err = np.abs(got.astype(ext) - want) / np.spacing(want.astype(dtype)).astype(ext)
    assert err.max() <= 2.0, ("exp", dtype, float(err.max()), float(x[np.argmax(err)]))
    tiny = np.finfo(dtype).tiny
    y = np.concatenate([np.exp(rng.uniform(np.log(tiny), np.log(np.finfo(dtype).max), 200_000)), rng.uniform(0, 1, 100_000),
                        rng.uniform(0.5, 2.0, 100_000), 1 + rng.uniform(-1e-3, 1e-3, 10_000), [tiny, 1.0]]).astype(dtype)
    y = y[y > 0]
    got = kernels_step.flog_array(y)
    want = np.log(y.astype(ext))
    err = np.abs(got.astype(ext) - want) / np.spacing(np.abs(want).astype(dtype)).astype(ext)
    assert err.max() <= 2.0, ("log", dtype, float(err.max()), float(y[np.argmax(err)]))
    assert kernels_step.fexp_array(np.array([0.0], dtype))[0] == 1.0
    assert kernels_step.flog_array(np.array([1.0], dtype))[0] == 0.0
    assert np.all(np.isfinite(kernels_step.fexp_array(np.array([-1e4, 1e4], dtype))))


def test_results_repeat_from_the_generator():
    dev = DEVICES["reram_es"]
    state0, x, d = _problem(dev)
    outs = []
    for seed in (7, 7, 8):
        st = state0.clone()
        pulsed_update_(dev, st, x, d, 0.05, UpdateConfig(), torch.Generator().manual_seed(seed))
        outs.append(st)
    assert torch.equal(outs[0].w, outs[1].w)
    assert torch.equal(outs[0].extra["write_noise"], outs[1].extra["write_noise"])
    assert not torch.equal(outs[0].w, outs[2].w)


@pytest.mark.parametrize("pulse_type", ["stochastic_compressed", "mean_count"])
def test_parallel_kernel_matches_the_serial_one(monkeypatch, pulse_type):
    """Rows draw from their own streams, so the split over threads does not change any number."""
    dev = D.ExpStepDevice(write_noise_std=1.0, dw_min_std_add=0.1)
    gen = torch.Generator().manual_seed(0)
    state0 = dev.build_state((40, 30), gen)
    x, d = torch.randn(6, 30, generator=gen), 0.1 * torch.randn(6, 40, generator=gen)
    x[1, 2:] = 0  # a sparse sample
    outs = []
    for threshold in (1 << 62, 0):
        monkeypatch.setattr(kernels, "_threads", lambda: 2)
        monkeypatch.setattr(kernels_step, "PARALLEL_MIN_WORK", threshold)
        monkeypatch.setattr(kernels, "PARALLEL_MIN_BITS", threshold)  # (the trains are the shared kernel's)
        st = state0.clone()
        stats = pulsed_update_(dev, st, x, d, 0.05, UpdateConfig(pulse_type=pulse_type), torch.Generator().manual_seed(3))
        outs.append((st, stats))
    assert outs[0][1].kernel == "serial" and outs[1][1].kernel == "parallel"
    assert torch.equal(outs[0][0].w, outs[1][0].w)
    assert torch.equal(outs[0][0].extra["write_noise"], outs[1][0].extra["write_noise"])
    assert outs[0][1].pulses == outs[1][1].pulses > 0


def test_non_contiguous_state_is_written_back():
    dev = DEVICES["exp_step"]
    gen = torch.Generator().manual_seed(0)
    big = dev.build_state((8, 12), gen)
    view = D.DeviceState(**{k: getattr(big, k)[:, ::2] for k in ("w", "dw_up", "dw_down", "w_max", "w_min")},
                         extra={k: v[:, ::2] for k, v in big.extra.items()})
    before = big.w.clone()
    stats = pulsed_update_(dev, view, torch.randn(3, 6, generator=gen), 0.1 * torch.randn(3, 8, generator=gen), 0.05,
                           UpdateConfig(backend="numba"), gen)
    assert stats.backend == "numba" and stats.pulses > 0
    assert not torch.equal(big.w[:, ::2], before[:, ::2])
    assert torch.equal(big.w[:, 1::2], before[:, 1::2])


def test_select_backend_picks_the_step_kernel(monkeypatch):
    gen = torch.Generator().manual_seed(0)
    for dev in (D.ExpStepDevice(), DEVICE_PRESETS.get("pcm")(), DEVICE_PRESETS.get("reram_es")(), D.PowStepDevice(),
                D.PowStepReferenceDevice(), D.PiecewiseStepDevice()):
        state = dev.build_state((3, 4), gen)
        assert kernels_step.step_kernel_supported(dev, state)
        assert not kernels.kernel_supported(dev, state)
        assert select_backend(dev, state, UpdateConfig()) == "numba"
        assert select_backend(dev, state, UpdateConfig(backend="torch")) == "torch"
        stats = pulsed_update_(dev, state, torch.ones(1, 4), torch.ones(1, 3), 0.05, UpdateConfig(), gen)
        assert stats.backend == "numba"
        assert select_backend(dev, state.to(torch.float16), UpdateConfig()) == "torch"
    monkeypatch.setenv("ANALOGKIT_KERNELS", "torch")
    assert select_backend(dev, state, UpdateConfig()) == "torch"
    assert select_backend(dev, state, UpdateConfig(backend="numba")) == "numba"


def test_pow_step_with_a_zero_exponent_is_not_covered():
    """0^γ for γ <= 0 is not e^{γ ln 0}: such states stay with the reference."""
    dev = D.PowStepDevice()
    state = dev.build_state((3, 4), torch.Generator().manual_seed(0))
    assert select_backend(dev, state, UpdateConfig()) == "numba"
    state.gamma_up[1, 2] = 0.0
    assert not kernels_step.step_kernel_supported(dev, state)
    assert select_backend(dev, state, UpdateConfig()) == "torch"


def test_subclass_with_other_physics_is_not_covered():
    class Other(D.ExpStepDevice):
        def _mean_std_dir(self, state, w, up):
            return super()._mean_std_dir(state, w, up)

    dev = Other()
    state = dev.build_state((3, 4), torch.Generator().manual_seed(0))
    assert not kernels_step.step_kernel_supported(dev, state)
    assert select_backend(dev, state, UpdateConfig()) == "torch"
    with pytest.raises(ValueError, match="numba"):
        select_backend(dev, state, UpdateConfig(backend="numba"))
