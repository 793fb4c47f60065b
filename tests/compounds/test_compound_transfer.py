"""Tiki-Taka (TTv1) transfers: period, read order, what moves from the fast to the slow array."""

from __future__ import annotations

import pytest
import torch

from analogkit.compounds import TransferCompound
from analogkit.config import IOConfig
from analogkit.optim import AnalogSGD
from analogkit.update import UpdateConfig
from compound_testkit import gen, ideal, layer_for, train_step

FP = UpdateConfig(pulse_type="none")  # floating-point writes: every change below is exact
PERFECT = IOConfig.perfect()


def tt(**kw):
    base = dict(unit_cell_devices=[ideal(), ideal()], transfer_forward=PERFECT, transfer_update=FP,
                scale_transfer_lr=False)
    base.update(kw)
    return TransferCompound(**base)


def test_transfer_happens_at_the_configured_period_and_moves_the_read_columns():
    comp = tt(transfer_every=3.0, n_reads_per_transfer=2, transfer_lr=0.5)
    state = comp.build_state((4, 5), gen(0))
    a, c = state.devices
    g = gen(1)
    for batch in range(1, 10):
        x, d = torch.randn(2, 5, generator=g), torch.randn(2, 4, generator=g)
        c_before = c.w.clone()
        comp.pulsed_update_(state, x, d, 0.1, FP, g)
        delta = c.w - c_before
        if batch % 3:
            assert torch.count_nonzero(delta) == 0, batch
        else:  # transfer k = batch/3 reads columns 2(k-1), 2(k-1)+1 (cyclic over 5)
            k = batch // 3
            cols = [(2 * (k - 1)) % 5, (2 * (k - 1) + 1) % 5]
            expect = torch.zeros(4, 5)
            expect[:, cols] = 0.5 * a.w[:, cols]
            torch.testing.assert_close(delta, expect)
    assert int(state.transfer_ptr[0]) == 6 % 5


def test_transfer_every_counts_samples_when_not_in_mini_batches():
    comp = tt(transfer_every=2.0, units_in_mbatch=False, n_reads_per_transfer=1)
    state = comp.build_state((3, 7), gen(0))
    g = gen(1)
    comp.pulsed_update_(state, torch.randn(5, 7, generator=g), torch.randn(5, 3, generator=g), 0.1, FP, g)
    assert int(state.update_count) == 5 and int(state.transfer_ptr[0]) == 2  # floor(5/2) transfers
    comp.pulsed_update_(state, torch.randn(5, 7, generator=g), torch.randn(5, 3, generator=g), 0.1, FP, g)
    assert int(state.transfer_ptr[0]) == 5  # floor(10/2) in all


def test_reads_beyond_one_sweep_see_their_earlier_writes():
    # 3 columns, 7 reads in one batch: C gets column j of A once per read of j (A is unchanged)
    comp = tt(n_reads_per_transfer=7, transfer_lr=1.0)
    state = comp.build_state((2, 3), gen(0))
    a, c = state.devices
    comp.pulsed_update_(state, torch.ones(1, 3), torch.tensor([[1.0, -2.0]]), 0.1, FP, gen(1))
    times = torch.tensor([3.0, 2.0, 2.0])  # columns 0,1,2,0,1,2,0
    torch.testing.assert_close(c.w, a.w * times)


def test_rows_are_read_and_written_as_rows():
    comp = tt(transfer_columns=False, n_reads_per_transfer=1, transfer_lr=1.0)
    state = comp.build_state((3, 4), gen(0))
    a, c = state.devices
    comp.pulsed_update_(state, torch.randn(2, 4, generator=gen(1)), torch.randn(2, 3, generator=gen(2)), 0.1, FP, gen(3))
    expect = torch.zeros(3, 4)
    expect[0] = a.w[0]
    torch.testing.assert_close(c.w, expect)


def test_reset_after_transfer_and_random_selection():
    dev = ideal().replace(reset_std=0.0)  # resets to exactly 0
    comp = tt(unit_cell_devices=[dev, dev], with_reset_prob=1.0, random_selection=True, n_reads_per_transfer=2,
              transfer_lr=1.0)
    state = comp.build_state((3, 6), gen(0))
    a, c = state.devices
    comp.pulsed_update_(state, torch.randn(2, 6, generator=gen(1)), torch.randn(2, 3, generator=gen(2)), 0.1, FP, gen(3))
    moved = (c.w != 0).any(dim=0)
    assert int(moved.sum()) == 2  # two consecutive columns from a random start
    assert torch.count_nonzero(a.w[:, moved]) == 0  # ... and reset on A
    assert torch.count_nonzero(a.w[:, ~moved]) > 0


def test_weight_is_gamma_a_plus_c_and_programming_goes_to_c():
    comp = tt(gamma=0.25)
    state = comp.build_state((2, 3), gen(0))
    w = torch.randn(2, 3, generator=gen(1))
    comp.set_weights(state, w, gen(2))
    a, c = state.devices
    assert torch.count_nonzero(a.w) == 0
    torch.testing.assert_close(c.w, w)
    comp.pulsed_update_(state, torch.randn(1, 3, generator=gen(3)), torch.randn(1, 2, generator=gen(4)), 0.1, FP, gen(5))
    torch.testing.assert_close(comp.apparent_weight(state), 0.25 * a.w + c.w)
    torch.testing.assert_close(state.w, 0.25 * a.w + c.w)


def test_chain_of_three_transfers_stage_by_stage():
    comp = tt(unit_cell_devices=[ideal(), ideal(), ideal()], gamma=0.0, transfer_lr_vec=[1.0, 1.0],
              transfer_every_vec=[1.0, 2.0])
    state = comp.build_state((2, 2), gen(0))
    g = gen(1)
    comp.pulsed_update_(state, torch.randn(1, 2, generator=g), torch.randn(1, 2, generator=g), 0.1, FP, g)
    assert torch.count_nonzero(state.devices[2].w) == 0 and torch.count_nonzero(state.devices[1].w) > 0
    comp.pulsed_update_(state, torch.randn(1, 2, generator=g), torch.randn(1, 2, generator=g), 0.1, FP, g)
    assert torch.count_nonzero(state.devices[2].w) > 0
    assert comp.gammas == [0.0, 0.0, 1.0]


def test_stochastic_tiki_taka_moves_fast_content_into_the_slow_array_through_a_layer():
    # noisy pulsed writes, transfer every mini-batch with all columns: C follows what A accumulated
    comp = TransferCompound(unit_cell_devices=[ideal(0.001), ideal(0.001)], n_reads_per_transfer=6,
                            transfer_forward=PERFECT, transfer_lr=1.0, scale_transfer_lr=False)
    layer = layer_for(comp, 6, 4)
    layer.set_weight(torch.zeros(4, 6))
    opt = AnalogSGD(layer.parameters(), lr=0.05)
    x = torch.randn(8, 6, generator=gen(1))
    state = layer.tile.device_state
    a, c = state.devices
    expected_c = torch.zeros(4, 6)
    for _ in range(5):
        train_step(layer, opt, x)
        expected_c += a.w[0]  # every column of A is transferred once per step with lr 1
    # the transfer write is a stochastic pulse update: expected change exact, pulses ±1 granularity
    err = (c.w[0] - expected_c).abs()
    assert float(err.max()) < 0.05 * float(expected_c.abs().max()) + 10 * 0.001
