"""apply_counts_: integer pulse counts applied exactly as the device's own pulse_n, on every path."""

from __future__ import annotations

import pytest
import torch

from analogkit.compounds import OneSidedUnitCell, VectorUnitCell, apply_counts_
from analogkit.compounds.base import _kernel_counts_ok
from analogkit.update.kernels import HAVE_NUMBA
from compound_testkit import constant, gen, ideal, soft_bounds

# Noiseless devices: every path must give the same weights (up to float rounding).
DEVICES = {"ideal": ideal(0.01, 0.5), "constant": constant(0.01), "soft_bounds": soft_bounds(0.02)}


def random_counts(shape, seed, sparsity=0.6, k_max=70):
    g = gen(seed)
    c = torch.randint(-k_max, k_max + 1, shape, generator=g, dtype=torch.int32)
    return torch.where(torch.rand(shape, generator=g) < sparsity, torch.zeros_like(c), c)


@pytest.mark.parametrize("name", sorted(DEVICES))
@pytest.mark.parametrize("k_max", [70, 3])  # long trains through the kernel; few pulses by pulse slots
@pytest.mark.parametrize("layout", ["full", "columns", "rows", "few_columns", "rows_in_few_columns"])
def test_counts_give_the_same_weights_as_pulse_n(name, layout, k_max):
    dev = DEVICES[name]
    shape = (9, 13)
    s_ref = dev.build_state(shape, gen(0))
    dev.set_weights(s_ref, 0.3 * torch.randn(shape, generator=gen(1)).clamp(-1, 1), gen(2))
    s_new = s_ref.clone()
    full = random_counts(shape, 3, k_max=k_max)
    if layout == "full":
        apply_counts_(dev, s_new, full, gen(4))
    elif layout in ("columns", "few_columns"):
        idx = torch.tensor([7, 2, 11] if layout == "few_columns" else [0, 3, 4, 8, 12])
        mask = torch.zeros(shape, dtype=torch.bool)
        mask[:, idx] = True
        full = torch.where(mask, full, torch.zeros_like(full))
        apply_counts_(dev, s_new, full.index_select(1, idx), gen(4), index=idx, columns=True)
    else:  # rows; in the last layout many rows with pulses in few columns (the other sample orientation)
        idx = torch.tensor([1, 5, 6]) if layout == "rows" else torch.tensor([0, 1, 2, 4, 5, 6, 7, 8])
        mask = torch.zeros(shape, dtype=torch.bool)
        mask[idx] = True
        if layout == "rows_in_few_columns":
            mask[:, [0, 1, 2, 4, 5, 7, 8, 9, 10]] = False
        full = torch.where(mask, full, torch.zeros_like(full))
        apply_counts_(dev, s_new, full.index_select(0, idx), gen(4), index=idx, columns=False)
    dev.pulse_n(s_ref, full, gen(5), method="loop")
    torch.testing.assert_close(s_new.w, s_ref.w, atol=1e-5, rtol=0)


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba kernel not installed")
def test_affine_devices_take_the_kernel_path():
    dev = soft_bounds(0.01, std=0.3)
    assert _kernel_counts_ok(dev, dev.build_state((3, 4), gen(0)), "exact")


def test_noisy_counts_match_pulse_n_in_mean_and_spread():
    # soft bounds with 30 % cycle-to-cycle noise: n pulses from w = 0. 4000 elements per path; the
    # mean of the two paths agrees within 5 standard errors (σ/√N·√2), the std within 10 %.
    dev = soft_bounds(0.01, std=0.3)
    shape = (40, 100)
    counts = torch.full(shape, 25, dtype=torch.int32)
    a = dev.build_state(shape, gen(0))
    b = dev.build_state(shape, gen(0))
    apply_counts_(dev, a, counts, gen(1))
    dev.pulse_n(b, counts, gen(2), method="loop")
    se = (a.w.std() ** 2 / a.w.numel() + b.w.std() ** 2 / b.w.numel()).sqrt()
    assert abs(float(a.w.mean() - b.w.mean())) < 5 * float(se)
    assert abs(float(a.w.std() / b.w.std()) - 1) < 0.1


def test_one_sided_cell_splits_counts_by_sign():
    cell = OneSidedUnitCell(unit_cell_devices=[ideal(0.01, 2.0)])
    state = cell.build_state((2, 3), gen(0))
    counts = torch.tensor([[3, -2, 0], [0, 5, -1]], dtype=torch.int32)
    apply_counts_(cell, state, counts, gen(1))
    plus, minus = state.devices
    torch.testing.assert_close(plus.w, 0.01 * counts.clamp(min=0).float())
    torch.testing.assert_close(minus.w, 0.01 * (-counts).clamp(min=0).float())  # W⁻ only rises
    torch.testing.assert_close(state.w, 0.01 * counts.float())


def test_vector_cell_counts_go_to_the_selected_device_with_its_sign():
    cell = VectorUnitCell(unit_cell_devices=[ideal(), ideal()], update_policy="single_fixed", first_update_idx=1,
                          gamma_vec=[1.0, -1.0])
    state = cell.build_state((2, 2), gen(0))
    apply_counts_(cell, state, torch.tensor([[1, 2], [0, -4]], dtype=torch.int32), gen(1))
    torch.testing.assert_close(state.devices[0].w, torch.zeros(2, 2))
    torch.testing.assert_close(state.w, 0.01 * torch.tensor([[1.0, 2.0], [0.0, -4.0]]))


@pytest.mark.parametrize("columns", [True, False])
def test_one_hot_writes_match_the_engine_in_expectation(columns):
    # A transfer write (one sample per column) through the reference engine and through the batched
    # counting of update_one_hot_ on an ideal device (every pulse exactly dw): 400 repetitions of a
    # write of 3 vectors; the mean change per element agrees within 5 standard errors.
    from analogkit.compounds.base import update_one_hot_
    from analogkit.update import UpdateConfig, pulsed_update_

    dev = ideal(0.01, 100.0)
    cfg = UpdateConfig(desired_bl=7, backend="torch")
    out, n_in, reps = 4, 5, 400
    idx = torch.tensor([3, 0, 2] if columns else [1, 3, 0])
    vals = torch.tensor([[0.02, -0.05, 0.01, 0.0, 0.03][: (out if columns else n_in)]] * 3) * torch.tensor([[1.0], [-2.0], [0.5]])
    hot = torch.zeros(3, n_in if columns else out)
    hot[torch.arange(3), idx] = 1.0
    x, d = (hot, vals) if columns else (vals, hot)
    a, b = dev.build_state((out, n_in), gen(0)), dev.build_state((out, n_in), gen(0))
    ga, gb = gen(1), gen(2)
    for _ in range(reps):
        update_one_hot_(dev, a, x, d, 0.3, cfg, ga, columns)
        pulsed_update_(dev, b, x, d, 0.3, cfg, gb)
    expect = -0.3 * d.t() @ x * reps
    # per element: a sum of reps binomial counts (BL 7) times dw; its sd ≤ dw·sqrt(reps·7/4)
    tol = 5 * 0.01 * (reps * 7 / 4) ** 0.5 * 2**0.5
    assert float((a.w - b.w).abs().max()) < tol
    assert float((a.w - expect).abs().max()) < tol
