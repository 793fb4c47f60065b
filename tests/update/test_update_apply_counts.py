"""``kernel_apply_counts_`` (given pulse counts per element, e.g. a mixed-precision transfer) against
``device.pulse_n``: the same law per element, every affine device family it covers.

Each element gets its own signed count (−6..6, some zero), from a state with d2d variation and some
elements next to a bound. R repeats per back-end; per element, the mean difference against its
standard error sqrt(s₁²/R + s₂²/R) and the variance difference against sqrt(SE₁² + SE₂²),
SE² ≈ (m₄ − s⁴)/R: 5 standard errors for every element (a float32 ulp floors the mean's error).
"""

from __future__ import annotations

import pytest
import torch

import analogkit.devices as D
from analogkit.compounds.base import apply_counts_
from analogkit.update import kernels

pytestmark = pytest.mark.skipif(not kernels.HAVE_NUMBA, reason="numba not installed")

REPS = 300

DEVICES = {
    "soft_bounds": D.SoftBoundsDevice(dw_min_std=0.5),  # series law (multiplicative noise)
    "soft_bounds_write_noise": D.SoftBoundsDevice(write_noise_std=1.0),
    "linear_step_additive": D.LinearStepDevice(gamma_up=0.3, gamma_down=0.2, mult_noise=False),  # per pulse
    "soft_bounds_reference": D.SoftBoundsReferenceDevice(reference_std=0.05),
    "constant_step": D.ConstantStepDevice(dw_min=0.002),  # n-pulse sum in one draw away from the bounds
    "constant_step_wide_noise": D.ConstantStepDevice(dw_min_std=0.6),  # pulse by pulse
    "ideal_bounded": D.IdealDevice(bounded=True, w_max=0.004, w_min=-0.004),
}


def _problem(dev: D.Device):
    gen = torch.Generator().manual_seed(4)
    state = dev.build_state((6, 10), gen)
    w = 0.5 * (state.w_max + state.w_min) + 0.4 * (state.w_max - state.w_min) * (torch.rand(6, 10, generator=gen) - 0.5)
    w[0] = state.w_max[0] - dev.dw_min  # next to the upper bound
    w[1] = state.w_min[1] + dev.dw_min  # next to the lower bound
    dev.set_weights(state, w, gen)
    counts = torch.randint(-6, 7, (6, 10), generator=gen, dtype=torch.int32)
    counts[2, :3] = 0
    return state, counts


def _repeat(fn, state0, reps, seed):
    gen = torch.Generator().manual_seed(seed)
    ws, wns = [], []
    for _ in range(reps):
        st = state0.clone()
        fn(st, gen)
        ws.append(st.w.clone().double())
        if "write_noise" in st.extra:
            wns.append(st.extra["write_noise"].clone().double())
    return torch.stack(ws), (torch.stack(wns) if wns else None)


def _assert_same_law(a: torch.Tensor, b: torch.Tensor, label: str) -> None:
    n = a.shape[0]
    se_m = torch.sqrt((a.var(0) + b.var(0)) / n).clamp(min=1e-7)
    assert ((a.mean(0) - b.mean(0)).abs() / se_m).max() < 5, (label, "mean")
    m4 = ((a - a.mean(0)) ** 4).mean(0) + ((b - b.mean(0)) ** 4).mean(0)
    se_v = torch.sqrt((m4 - a.var(0) ** 2 - b.var(0) ** 2).clamp(min=0) / n).clamp(min=1e-14)
    assert ((a.var(0) - b.var(0)).abs() / se_v).max() < 5, (label, "variance")


@pytest.mark.parametrize("name", list(DEVICES))
def test_kernel_counts_agree_with_pulse_n(name):
    dev = DEVICES[name]
    state0, counts = _problem(dev)
    assert kernels.kernel_supported(dev, state0)
    ref, ref_wn = _repeat(lambda st, g: dev.pulse_n(st, counts, g, method="loop"), state0, REPS, 1)
    ker, ker_wn = _repeat(lambda st, g: kernels.kernel_apply_counts_(dev, st, counts, None, g), state0, REPS, 2)
    moved = (ker - state0.w.double()).abs().amax(0) > 0
    assert bool(moved[counts != 0].float().mean() > 0.9) and not bool(moved[counts == 0].any())
    _assert_same_law(ref, ker, name)
    if ref_wn is not None:
        _assert_same_law(ref_wn, ker_wn, f"{name} write noise")


@pytest.mark.parametrize(("columns", "name"), [
    (False, "soft_bounds"),  # a mixed-precision transfer of selected rows (whole rows, series law)
    (True, "soft_bounds"),  # a Tiki-Taka transfer of selected columns (pulse by pulse)
    (True, "linear_step_additive"),
    (True, "soft_bounds_write_noise"),
])
def test_vector_subsets_through_apply_counts(columns, name):
    """Counts on some rows or columns only, through ``apply_counts_``: the other vectors keep their
    weights exactly, the given ones follow pulse_n's law (write noise included)."""
    dev = DEVICES[name]
    state0, counts = _problem(dev)
    dim = 1 if columns else 0
    index = torch.tensor([4, 1, 3])
    sub = counts.index_select(dim, index)
    full = torch.zeros_like(counts)
    full.index_copy_(dim, index, sub)
    ref, ref_wn = _repeat(lambda st, g: dev.pulse_n(st, full, g, method="loop"), state0, REPS, 5)
    ker, ker_wn = _repeat(lambda st, g: apply_counts_(dev, st, sub, g, index=index, columns=columns), state0, REPS, 6)
    others = torch.tensor([k for k in range(counts.shape[dim]) if k not in (4, 1, 3)])
    w0 = state0.w.double().index_select(dim, others)
    assert torch.equal(ker.index_select(dim + 1, others), w0.expand(REPS, -1, -1))
    _assert_same_law(ref, ker, f"{name} columns={columns}")
    if ref_wn is not None:
        _assert_same_law(ref_wn, ker_wn, f"{name} columns={columns} write noise")


def test_reproducible_from_the_generator():
    dev = DEVICES["soft_bounds_write_noise"]
    state0, counts = _problem(dev)
    outs = []
    for _ in range(2):
        st = state0.clone()
        kernels.kernel_apply_counts_(dev, st, counts, None, torch.Generator().manual_seed(9))
        outs.append(st)
    assert torch.equal(outs[0].w, outs[1].w)
    assert torch.equal(outs[0].extra["write_noise"], outs[1].extra["write_noise"])


STEP_DEVICES = {
    "exp_step": D.ExpStepDevice(write_noise_std=1.0),  # the reram_es / pcm law, write noise redrawn
    "pow_step": D.PowStepDevice(),
    "piecewise_step": D.PiecewiseStepDevice(),
}


@pytest.mark.parametrize("name", list(STEP_DEVICES))
def test_step_kernel_counts_agree_with_pulse_n(name):
    """Whole-array counts on exp-, pow- and piecewise-step devices (``step_kernel_apply_counts_``,
    what ``apply_counts_`` takes for them, e.g. the one-sided pair's refresh): pulse_n's law per
    element, elements without a count untouched, reproducible from the generator."""
    from analogkit.update import kernels_step

    dev = STEP_DEVICES[name]
    state0, counts = _problem(dev)
    assert kernels_step.step_kernel_supported(dev, state0)
    ref, ref_wn = _repeat(lambda st, g: dev.pulse_n(st, counts, g, method="loop"), state0, REPS, 1)
    ker, ker_wn = _repeat(lambda st, g: apply_counts_(dev, st, counts, g), state0, REPS, 2)
    moved = (ker - state0.w.double()).abs().amax(0) > 0
    assert bool(moved[counts != 0].float().mean() > 0.9) and not bool(moved[counts == 0].any())
    _assert_same_law(ref, ker, name)
    if ref_wn is not None:
        _assert_same_law(ref_wn, ker_wn, f"{name} write noise")
        assert not bool((ker_wn != state0.extra["write_noise"].double())[:, counts == 0].any())
    again = [state0.clone() for _ in range(2)]
    for st in again:
        kernels_step.step_kernel_apply_counts_(dev, st, counts, torch.Generator().manual_seed(9))
    assert torch.equal(again[0].w, again[1].w)
