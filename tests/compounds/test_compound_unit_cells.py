"""Vector, reference and one-sided unit cells: who gets the update, weights, refresh."""

from __future__ import annotations

import math

import pytest
import torch

from analogkit.compounds import OneSidedUnitCell, ReferenceUnitCell, VectorUnitCell
from analogkit.config import IOConfig
from analogkit.devices import IdealDevice
from analogkit.update import UpdateConfig, pulsed_update_
from compound_testkit import gen, ideal

FP = UpdateConfig(pulse_type="none")


def moved(state, before):
    return [int(not torch.equal(s.w, b)) for s, b in zip(state.devices, before)]


def run_policy(policy, n_updates, first=0):
    cell = VectorUnitCell(unit_cell_devices=[ideal()] * 3, update_policy=policy, first_update_idx=first)
    state = cell.build_state((2, 2), gen(0))
    g = gen(1)
    history = []
    for _ in range(n_updates):
        before = [s.w.clone() for s in state.devices]
        cell.pulsed_update_(state, torch.ones(1, 2), torch.ones(1, 2), 0.01, FP, g)
        history.append(moved(state, before))
    return cell, state, history


def test_policy_all_updates_every_device_and_the_weight_is_their_mean():
    cell, state, hist = run_policy("all", 2)
    assert hist == [[1, 1, 1]] * 2
    torch.testing.assert_close(state.w, sum(s.w for s in state.devices) / 3)
    torch.testing.assert_close(state.w, torch.full((2, 2), -0.02))  # each device moved by -lr·d x twice


def test_single_policies_pick_one_device_per_mini_batch():
    assert run_policy("single_fixed", 3, first=2)[2] == [[0, 0, 1]] * 3
    assert run_policy("single_sequential", 4, first=1)[2] == [[0, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0]]
    # random: 600 updates over 3 devices, ~Binomial(600, 1/3) each (sd 11.5); allow 5 sd
    counts = torch.tensor(run_policy("single_random", 600)[2]).sum(0)
    assert all(abs(int(c) - 200) < 5 * math.sqrt(600 * 2 / 9) for c in counts), counts
    assert all(sum(h) == 1 for h in run_policy("single_random", 20)[2])


def test_set_weights_splits_by_gamma():
    cell = VectorUnitCell(unit_cell_devices=[ideal(), ideal()], gamma_vec=[1.0, 0.5])
    state = cell.build_state((2, 3), gen(0))
    w = torch.randn(2, 3, generator=gen(1))
    cell.set_weights(state, w, gen(2))
    torch.testing.assert_close(state.devices[0].w, w / 1.25)
    torch.testing.assert_close(state.devices[1].w, w * 0.5 / 1.25)
    torch.testing.assert_close(cell.apparent_weight(state), w)


def test_reference_cell_updates_only_the_first_device_and_keeps_the_reference():
    cell = ReferenceUnitCell(unit_cell_devices=[ideal()])
    state = cell.build_state((2, 2), gen(0))
    ref = torch.tensor([[0.1, -0.2], [0.3, 0.0]])
    cell.set_reference(state, ref, gen(1))
    w = torch.tensor([[0.5, 0.5], [-0.5, 0.0]])
    cell.set_weights(state, w, gen(2))
    torch.testing.assert_close(state.devices[1].w, ref)
    torch.testing.assert_close(cell.apparent_weight(state), w)
    cell.pulsed_update_(state, torch.ones(1, 2), torch.ones(1, 2), 0.1, FP, gen(3))
    torch.testing.assert_close(state.devices[1].w, ref)
    torch.testing.assert_close(state.w, w - 0.1)


@pytest.mark.parametrize("pulse_type", ["deterministic_implicit", "none"])
def test_one_sided_cell_nets_the_same_change_as_one_device(pulse_type):
    # ideal unbounded devices: W⁺ − W⁻ changes exactly as a single device would, and both only rise
    cfg = UpdateConfig(pulse_type=pulse_type, desired_bl=7)
    cell = OneSidedUnitCell(unit_cell_devices=[ideal(0.01)])
    state = cell.build_state((3, 4), gen(0))
    single = ideal(0.01)
    s_one = single.build_state((3, 4), gen(0))
    g = gen(1)
    x, d = torch.randn(6, 4, generator=g), 0.3 * torch.randn(6, 3, generator=g)
    cell.pulsed_update_(state, x, d, 0.05, cfg, gen(2))
    pulsed_update_(single, s_one, x, d, 0.05, cfg, gen(2))
    torch.testing.assert_close(state.w, s_one.w, atol=1e-6, rtol=0)
    assert bool((state.devices[0].w >= 0).all()) and bool((state.devices[1].w >= 0).all())
    assert torch.count_nonzero(state.devices[0].w) > 0 and torch.count_nonzero(state.devices[1].w) > 0


def test_refresh_resets_saturated_pairs_and_rewrites_their_difference():
    dev = IdealDevice(dw_min=0.01, bounded=True, w_max=1.0, w_min=0.0, reset_std=0.0)
    cell = OneSidedUnitCell(unit_cell_devices=[dev], refresh_every=2, refresh_forward=IOConfig.perfect(),
                            refresh_update=FP)
    state = cell.build_state((2, 2), gen(0))
    plus, minus = state.devices
    plus.w.copy_(torch.tensor([[0.9, 0.9], [0.2, 0.8]]))
    minus.w.copy_(torch.tensor([[0.5, 0.1], [0.1, 0.9]]))
    # the first update does not refresh (period 2)
    cell.pulsed_update_(state, torch.zeros(1, 2), torch.zeros(1, 2), 0.1, FP, gen(1))
    assert float(plus.w[0, 0]) == pytest.approx(0.9)
    cell.pulsed_update_(state, torch.zeros(1, 2), torch.zeros(1, 2), 0.1, FP, gen(1))
    # (0,0): 0.9/0.5 > 0.75/0.25 → reset, +0.4 on W⁺;  (1,1): 0.9/0.8 → reset, −0.1 on W⁻
    torch.testing.assert_close(plus.w, torch.tensor([[0.4, 0.9], [0.2, 0.0]]))
    torch.testing.assert_close(minus.w, torch.tensor([[0.0, 0.1], [0.1, 0.1]]))
    torch.testing.assert_close(state.w, torch.tensor([[0.4, 0.8], [0.1, -0.1]]))
