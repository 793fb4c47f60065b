"""The numba kernel against the PyTorch reference: same law of Δw per element, every affine device.

Both back-ends start from one device state (with d2d variation and c2c noise, some elements next
to a bound) and apply the same (x, d) R times with independent draws. Per element, the difference
of the two means is compared with its standard error sqrt(s₁²/R + s₂²/R), and the difference of
the two variances with sqrt(SE₁² + SE₂²), SE² ≈ (m₄ − s⁴)/R (m₄: fourth central moment, so the
test holds for the non-Gaussian laws of pulse counts too). 5 standard errors for every element.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from update_testkit import NO_D2D, deterministic_pair, many_dense_samples, repeat_updates

import analogkit.devices as D
from analogkit.update import UpdateConfig, kernels, pulsed_update_

pytestmark = pytest.mark.skipif(not kernels.HAVE_NUMBA, reason="numba not installed")

REPS = 250

DEVICES = {
    "constant_step": D.ConstantStepDevice(),
    "constant_step_wide_noise": D.ConstantStepDevice(dw_min_std=0.6),  # closed form not exact: pulse by pulse
    "ideal_bounded": D.IdealDevice(bounded=True, w_max=0.05, w_min=-0.05),
    "linear_step_additive": D.LinearStepDevice(gamma_up=0.3, gamma_down=0.2, mult_noise=False, write_noise_std=1.0),
    "soft_bounds": D.SoftBoundsDevice(),
    "soft_bounds_pmax": D.SoftBoundsPmaxDevice(p_max=200, alpha=0.01),
    "soft_bounds_reference": D.SoftBoundsReferenceDevice(reference_std=0.05, subtract_symmetry_point=True),
}


def _problem(dev: D.Device, seed: int = 0, dtype: torch.dtype = torch.float32):
    gen = torch.Generator().manual_seed(seed)
    out, n_in = 5, 8
    state = dev.build_state((out, n_in), gen, dtype=dtype)
    w = 0.5 * (state.w_max + state.w_min) + 0.3 * (state.w_max - state.w_min) * (torch.rand(out, n_in, generator=gen) - 0.5)
    w[0] = state.w_max[0] - 2 * dev.dw_min  # next to the upper bound
    w[1, :4] = state.w_min[1, :4] + 2 * dev.dw_min  # next to the lower bound
    dev.set_weights(state, w, gen)
    x = torch.randn(5, n_in, generator=gen)
    x[2, 1:] = 0  # a sample with one firing column: visited through the column list
    x[3, ::2] = 0
    d = 0.05 * torch.randn(5, out, generator=gen)
    d[4] *= 0.01  # a sample with short trains
    return state, x, d


def _compare(a: torch.Tensor, b: torch.Tensor, label: str) -> None:
    n = a.shape[0]
    ma, mb = a.mean(0), b.mean(0)
    va, vb = a.var(0), b.var(0)
    se_m = torch.sqrt((va + vb) / n)
    z_m = (ma - mb).abs() / se_m.clamp(min=1e-15)
    assert (z_m < 5).all(), (label, "mean", z_m.max().item())
    m4a = ((a - ma) ** 4).mean(0)
    m4b = ((b - mb) ** 4).mean(0)
    se_v = torch.sqrt(((m4a - va**2).clamp(min=0) + (m4b - vb**2).clamp(min=0)) / n)
    z_v = (va - vb).abs() / se_v.clamp(min=1e-30)
    assert (z_v < 5).all(), (label, "variance", z_v.max().item())


@pytest.mark.parametrize("application", ["exact", "closed_form"])
@pytest.mark.parametrize("name", list(DEVICES))
def test_numba_and_torch_agree_in_mean_and_variance(name, application):
    dev = DEVICES[name]
    state0, x, d = _problem(dev)
    results = {}
    for backend in ("torch", "numba"):
        cfg = UpdateConfig(backend=backend, pulse_application=application)
        results[backend] = repeat_updates(dev, state0, x, d, 0.05, cfg, REPS, seed=5 if backend == "torch" else 6)
    wt, wnt = results["torch"]
    wk, wnk = results["numba"]
    dwt, dwk = (wt - state0.w).double(), (wk - state0.w).double()
    assert dwt.abs().amax(0).gt(0).float().mean() > 0.8  # most elements get pulses
    _compare(dwt, dwk, f"{name}/{application}")
    if wnt.numel():
        _compare(wnt.double(), wnk.double(), f"{name}/{application} write noise")


def _agree(dev: D.Device, state0: D.DeviceState, x: torch.Tensor, d: torch.Tensor, label: str,
           min_moved: float) -> None:
    """Both back-ends, REPS updates each from ``state0``, default config: most elements move, and
    per element Δw (and the write noise) agree in mean and variance."""
    results = {}
    for backend in ("torch", "numba"):
        cfg = UpdateConfig(backend=backend)
        results[backend] = repeat_updates(dev, state0, x, d, 0.05, cfg, REPS, seed=5 if backend == "torch" else 6)
    (wt, wnt), (wk, wnk) = results["torch"], results["numba"]
    dwt, dwk = (wt - state0.w).double(), (wk - state0.w).double()
    assert dwt.abs().amax(0).gt(0).float().mean() > min_moved
    _compare(dwt, dwk, label)
    if wnt.numel():
        _compare(wnt.double(), wnk.double(), f"{label} write noise")


ADDITIVE = {
    "linear_step": D.LinearStepDevice(gamma_up=0.3, gamma_down=0.2, mult_noise=False, dw_min_std=2.0, up_down=0.4,
                                      write_noise_std=1.0),
    "soft_bounds_reference": D.SoftBoundsReferenceDevice(mult_noise=False, dw_min_std=2.0, up_down=-0.4,
                                                         reference_std=0.05),
}


@pytest.mark.parametrize("route", ["closed_form", "pulses"])
@pytest.mark.parametrize("name", list(ADDITIVE))
def test_additive_noise_routes_agree(monkeypatch, name, route):
    """Additive c2c noise, dense samples: the closed form (exact away from the bounds, pulses next to
    them) or, where rows have few pulses per element, pulse by pulse in groups
    (``CLOSED_MIN_PULSES``). Each route forced on a problem with long trains, elements next to both
    bounds and up and down steps of different size; wide c2c noise (σ = 2: its variance is four
    times the count's), so that the test resolves the noise law: per element statistics (and of
    the write noise) as the reference's. (Only stochastic trains make dense samples.)"""
    monkeypatch.setattr(kernels, "CLOSED_MIN_PULSES", 0.0 if route == "closed_form" else 1e9)
    dev = ADDITIVE[name]
    state0, x, d = _problem(dev)
    d = d * 4  # long trains: several pulses per element and sample
    _agree(dev, state0, x, d, f"{name}/{route}", min_moved=0.8)


#: Soft bounds whose slope is −1.5 (dw_min > w_max): steps overshoot, so without noise the kernel
#: pulses them one by one (the closed form is not exact), and w ← a + (1 + b)·w contracts (rounding
#: differences shrink from pulse to pulse).
OVERSHOOT = D.SoftBoundsDevice(dw_min=0.3, w_max=0.2, w_min=-0.2, up_down=0.3, dw_min_std=0.0, **NO_D2D)


@pytest.mark.parametrize(("group_pulses", "full"), [(128, False), (33, False), (8, False), (128, True)])
def test_groups_of_dense_samples_keep_each_elements_order(monkeypatch, group_pulses, full):
    """Pulse-by-pulse devices: consecutive dense samples are applied as groups (one sort, each
    element's pulses a stream of direction bits). Deterministic counts and no noise: every
    element's pulse sequence is fixed, so the weights agree with the reference to rounding, for
    groups ending at almost every sample (8) or holding many changes of direction (33, 128), and
    with full trains (31 pulses per element and sample: groups end at their pulse limit)."""
    monkeypatch.setattr(kernels, "GROUP_PULSES", group_pulses)
    state0, x, d = many_dense_samples(OVERSHOOT, seed=3, full=full)
    (wt, pt, _), (wk, pk, _) = deterministic_pair(OVERSHOOT, state0, x, d, 0.5)
    assert pt == pk > 20 * wt.numel()  # long trains: several 32-pulse direction words per element
    assert (wt != state0.w).float().mean() > 0.9
    torch.testing.assert_close(wk, wt, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["constant_step_wide_noise", "overshoot_write_noise"])
def test_groups_agree_in_mean_and_variance(monkeypatch, name):
    """Stochastic trains over a run of dense samples, in groups of varying size with changes of
    direction inside them, for both pulse-by-pulse cases: c2c noise too wide for the closed form
    (σ = 0.6), and overshooting steps (with write noise). Per element statistics (and of the write
    noise) as the reference's."""
    monkeypatch.setattr(kernels, "GROUP_PULSES", 40)
    dev = DEVICES.get(name) or dataclasses.replace(OVERSHOOT, write_noise_std=1.0, dw_min_dtod=0.1)
    state0, x, d = many_dense_samples(dev, seed=5, samples=8, n_in=12)
    if name == "constant_step_wide_noise":
        d *= 0.1  # a few pulses per element and sample, so that few elements reach a bound
    _agree(dev, state0, x, d, f"{name}/groups", min_moved=0.9)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["constant_step", "soft_bounds", "soft_bounds_reference"])
def test_float64_states(name):
    """The kernel compiled for float64 device states (a separate numba signature) agrees as well."""
    dev = DEVICES[name]
    state0, x, d = _problem(dev, dtype=torch.float64)
    wt, _ = repeat_updates(dev, state0, x, d, 0.05, UpdateConfig(backend="torch"), REPS, seed=5)
    wk, _ = repeat_updates(dev, state0, x, d, 0.05, UpdateConfig(backend="numba"), REPS, seed=6)
    assert wk.dtype == torch.float64
    _compare(wt - state0.w, wk - state0.w, f"{name}/float64")


def test_parallel_kernel_matches_the_serial_one(monkeypatch):
    """The parallel row kernel (blocks of rows on threads) gives the same result as the serial one:
    rows draw from their own streams, so the thread split does not change any number."""
    dev = D.SoftBoundsDevice(write_noise_std=1.0)
    gen = torch.Generator().manual_seed(0)
    state0 = dev.build_state((40, 30), gen)
    x, d = torch.randn(6, 30, generator=gen), 0.1 * torch.randn(6, 40, generator=gen)
    outs = []
    for threshold in (1 << 62, 0):
        monkeypatch.setattr(kernels, "_threads", lambda: 2)
        monkeypatch.setattr(kernels, "PARALLEL_MIN_WORK", threshold)
        monkeypatch.setattr(kernels, "PARALLEL_MIN_BITS", threshold)
        st = state0.clone()
        stats = pulsed_update_(dev, st, x, d, 0.05, UpdateConfig(), torch.Generator().manual_seed(3))
        outs.append((st, stats))
    assert outs[0][1].kernel == "serial" and outs[1][1].kernel == "parallel"
    assert torch.equal(outs[0][0].w, outs[1][0].w)
    assert torch.equal(outs[0][0].extra["write_noise"], outs[1][0].extra["write_noise"])
    assert outs[0][1].pulses == outs[1][1].pulses


@pytest.mark.parametrize("start", ["upper", "middle"])
def test_additive_noise_closed_form_falls_back_to_pulses_at_the_bounds(start):
    """Additive c2c noise on an affine step: the kernel draws a dense sample's n pulses as one exact
    Gaussian, but only where the per-pulse clipping cannot act (module docstring, Lévy bound).
    Next to a bound with wide noise (σ = 2: a third of the pulses there point back) the per-pulse
    law differs clearly from one Gaussian clipped once, so this fails if the fallback is skipped;
    in the middle the closed form must agree with the pulse-by-pulse reference as well."""
    dev = D.LinearStepDevice(gamma_up=0.1, gamma_down=0.1, mult_noise=False, dw_min_std=2.0, dw_min_dtod=0.0,
                             up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0)
    gen = torch.Generator().manual_seed(3)
    state0 = dev.build_state((4, 8), gen)
    w = torch.full((4, 8), state0.w_max[0, 0].item() - dev.dw_min) if start == "upper" else torch.zeros(4, 8)
    dev.set_weights(state0, w, gen)
    x = torch.ones(3, 8)  # every column fires in every slot: dense samples, up pulses (d < 0)
    d = -torch.ones(3, 4)
    results = {}
    for backend in ("torch", "numba"):
        cfg = UpdateConfig(backend=backend)
        results[backend] = repeat_updates(dev, state0, x, d, 0.05, cfg, REPS, seed=5 if backend == "torch" else 6)[0]
    _compare((results["torch"] - state0.w).double(), (results["numba"] - state0.w).double(), f"additive/{start}")


ONE_SLOT = {
    "soft_bounds": DEVICES["soft_bounds"],  # multiplicative noise: the one-slot passes
    "reference_mult": D.SoftBoundsReferenceDevice(reference_std=0.05, mult_noise=True),  # the same, reading r
    "linear_step_additive": DEVICES["linear_step_additive"],  # additive noise: per-element path
    "soft_bounds_write_noise": D.SoftBoundsDevice(write_noise_std=1.0),  # pulsed elements redraw it
}


@pytest.mark.parametrize("one_pass", ["column_list", "masked_row"])
@pytest.mark.parametrize("name", list(ONE_SLOT))
def test_one_slot_trains_agree(name, one_pass, monkeypatch):
    """Trains of one slot (BL = 1, the c-TTv2/AGAD regime): the kernel applies one pulse to each firing
    column of each firing row, in one pass over the column list or in a masked pass over the row
    (``ONE_SLOT_MASKED`` picks by the share of firing columns: 0 forces the list, a large value the
    masked row); either way the same law as the reference per element (5 standard errors). Most
    elements get a pulse in some of the repeats."""
    monkeypatch.setattr(kernels, "ONE_SLOT_MASKED", 0 if one_pass == "column_list" else 1 << 20)
    dev = ONE_SLOT[name]
    gen = torch.Generator().manual_seed(11)
    state0 = dev.build_state((12, 40), gen)
    x = torch.randn(6, 40, generator=gen)
    d = 0.05 * torch.randn(6, 12, generator=gen)
    cfg_kw = {"desired_bl": 1}
    results = {}
    for backend in ("torch", "numba"):
        cfg = UpdateConfig(backend=backend, **cfg_kw)
        results[backend] = repeat_updates(dev, state0, x, d, 0.05, cfg, REPS, seed=5 if backend == "torch" else 6)
    dwt, dwk = (results["torch"][0] - state0.w).double(), (results["numba"][0] - state0.w).double()
    assert (dwk != 0).any(0).float().mean() > 0.8
    _compare(dwt, dwk, f"{name}/one-slot")
    if "write_noise" in state0.extra:  # redrawn exactly on the elements that got a pulse
        wn_k = results["numba"][1]
        assert torch.equal(wn_k != state0.extra["write_noise"], results["numba"][0] != state0.w)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sample_abs_max_lets_nan_through_and_is_exact(dtype):
    """The plan's per-sample max |x| (an integer max over the IEEE bits): exact, and NaN wins."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((40, 300)).astype(dtype)
    a[3, 5] = np.nan  # NaN anywhere in a sample: the sample is skipped
    a[7, 1] = -np.inf
    a[9] = 0.0
    a[10, :] = -0.0
    a[11, 17] = -1e30 if dtype == "float32" else -1e300  # the largest magnitude, negative
    out = kernels.abs_max_rows(a)
    ref = np.abs(a).max(axis=1).astype(np.float64)  # numpy's max propagates NaN
    assert out.dtype == np.float64
    assert np.array_equal(out, ref, equal_nan=True)
    assert np.isnan(out[3]) and out[7] == np.inf and out[9] == 0.0 and out[10] == 0.0
