"""Compound configs and states: registry, plain-data round trip, validation, flat tensors and views."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch

from analogkit.compounds import (
    COMPOUNDS,
    ChoppedTransferCompound,
    CompoundState,
    MixedPrecisionCompound,
    OneSidedUnitCell,
    TransferCompound,
    VectorUnitCell,
)
from analogkit.config import TileConfig
from compound_testkit import constant, example_compounds, gen, ideal, layer_for

EXAMPLES = example_compounds()


def test_every_registered_compound_has_an_example():
    assert set(COMPOUNDS) == set(EXAMPLES)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_config_round_trips_through_plain_data_and_yaml(kind):
    cfg = TileConfig(device=EXAMPLES[kind])
    data = cfg.to_dict()
    assert data["device"]["kind"] == kind
    assert TileConfig.from_dict(data) == cfg
    assert TileConfig.from_yaml(cfg.to_yaml()) == cfg
    assert TileConfig.from_json(cfg.to_json()) == cfg


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_state_flattens_and_rebuilds_as_views(kind):
    comp = EXAMPLES[kind]
    state = comp.build_state((2, 4, 6), gen(0))
    flat = state.tensors()
    assert "w" in flat and all(t.shape[0] == 2 for t in flat.values())
    assert all(name.isidentifier() and "." not in name for name in flat)  # usable as buffer names
    again = comp.state_from_tensors(flat)
    assert again.tensors().keys() == flat.keys()
    assert all(again.tensors()[k] is v for k, v in flat.items())  # the same tensors, no copies
    # a group view writes through
    sub = again.select_group(1)
    for name, t in sub.tensors().items():
        assert t.data_ptr() == flat[name][1].data_ptr(), name


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_weight_is_the_effective_hidden_weight(kind):
    comp = EXAMPLES[kind]
    state = comp.build_state((4, 6), gen(1))
    target = 0.1 * torch.randn(4, 6, generator=gen(2))
    comp.set_weights(state, target, gen(3))
    torch.testing.assert_close(state.w, comp.hidden_weight(state))
    if kind != "transfer_compound":  # transfer: w/γ_last lands on C, the others at 0
        torch.testing.assert_close(comp.apparent_weight(state), target, atol=1e-6, rtol=0)


def test_a_pulsed_layer_exposes_the_effective_weight():
    layer = layer_for(TransferCompound(unit_cell_devices=[ideal(), ideal()], gamma=0.5), 3, 2)
    state = layer.tile.device_state
    assert isinstance(state, CompoundState)
    assert layer.weight.data_ptr() == state.w.data_ptr()
    # with γ = 0 the slow array's own weight is the layer's weight (no mirror)
    layer0 = layer_for(TransferCompound(unit_cell_devices=[ideal(), ideal()]), 3, 2)
    s0 = layer0.tile.device_state
    assert s0.weight_index == 1 and layer0.weight.data_ptr() == s0.devices[1].w.data_ptr()
    assert "d1__w" not in s0.tensors()


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: TransferCompound(unit_cell_devices=[constant()]), "TransferCompound.unit_cell_devices"),
        (lambda: TransferCompound(unit_cell_devices=[constant(), "x"]), "TransferCompound.unit_cell_devices[1]"),
        (lambda: TransferCompound(unit_cell_devices=[constant(), constant()], transfer_every=-1.0), "TransferCompound.transfer_every"),
        (lambda: TransferCompound(unit_cell_devices=[constant(), constant()], gamma_vec=[1.0]), "TransferCompound.gamma_vec"),
        (lambda: ChoppedTransferCompound(unit_cell_devices=[constant(), constant()], in_chop_prob=1.5), "ChoppedTransferCompound.in_chop_prob"),
        (lambda: ChoppedTransferCompound(unit_cell_devices=[constant()] * 3), "ChoppedTransferCompound.unit_cell_devices"),
        (lambda: ChoppedTransferCompound(unit_cell_devices=[constant()] * 2, random_selection=True), "ChoppedTransferCompound.random_selection"),
        (lambda: VectorUnitCell(unit_cell_devices=[constant()], update_policy="some"), "VectorUnitCell.update_policy"),
        (lambda: VectorUnitCell(unit_cell_devices=[constant()], first_update_idx=1), "VectorUnitCell.first_update_idx"),
        (lambda: OneSidedUnitCell(unit_cell_devices=[constant()], refresh_upper_thres=2.0), "OneSidedUnitCell.refresh_upper_thres"),
        (lambda: MixedPrecisionCompound(device=constant(), n_x_bins=1), "MixedPrecisionCompound.n_x_bins"),
        (lambda: MixedPrecisionCompound(device=TransferCompound(unit_cell_devices=[constant()] * 2)), "MixedPrecisionCompound.device"),
    ],
)
def test_invalid_fields_are_named_with_what_is_allowed(make, field):
    with pytest.raises(ValueError, match="^" + re.escape(field) + ": .* is not allowed; use"):
        make()


def test_replace_validates_again():
    comp = EXAMPLES["dynamic_transfer_compound"]
    with pytest.raises(ValueError, match="in_chop_prob"):
        comp.replace(in_chop_prob=0.0)
    assert dataclasses.replace(comp, tail_weightening=2.0).tail_weightening == 2.0
