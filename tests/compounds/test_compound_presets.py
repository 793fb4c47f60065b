"""Every algorithm preset builds, trains through AnalogLinear + AnalogSGD and round-trips a checkpoint;
build_config's names, devices and overrides."""

from __future__ import annotations

import io

import pytest
import torch

import analogkit
from analogkit.compounds import (
    ALGORITHM_PRESETS,
    ALGORITHMS,
    ChoppedTransferCompound,
    DynamicTransferCompound,
    MixedPrecisionCompound,
    TransferCompound,
    VectorUnitCell,
    build_config,
    list_presets,
)
from analogkit.config import TileConfig
from analogkit.devices import DEVICE_PRESETS, SoftBoundsDevice
from analogkit.nn import AnalogLinear
from analogkit.optim import AnalogSGD

PRESETS = list(ALGORITHM_PRESETS)


def build(cfg, seed):
    analogkit.manual_seed(seed)
    layer = AnalogLinear(6, 4, config=cfg)
    return layer, AnalogSGD(layer.parameters(), lr=0.1)


def step(layer, opt, x):
    opt.zero_grad()
    layer(x).pow(2).sum().backward()
    opt.step()


def test_one_preset_per_algorithm_and_device_preset():
    algorithms = {"sgd", "mixed-precision", "tiki-taka", "ttv2", "c-ttv2", "agad"}
    assert set(PRESETS) == {f"{a}/{d}" for a in algorithms for d in DEVICE_PRESETS}
    listed = list_presets()
    assert [name for name, _ in listed] == sorted(PRESETS)
    assert all(isinstance(src, str) and src and "\n" not in src for _, src in listed)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_trains_and_round_trips_a_checkpoint(name):
    cfg = ALGORITHM_PRESETS.get(name)()
    assert isinstance(cfg, TileConfig) and cfg == ALGORITHM_PRESETS.get(name)()
    assert TileConfig.from_dict(cfg.to_dict()) == cfg
    x = torch.randn(3, 6, generator=torch.Generator().manual_seed(0))
    a, opt_a = build(cfg, 0)
    before = {k: v.clone() for k, v in a.tile.device_state.tensors().items()}
    for _ in range(2):
        step(a, opt_a, x)
    assert torch.isfinite(a.weight).all()
    after = a.tile.device_state.tensors()
    assert any(not torch.equal(before[k], after[k]) for k in before), "training steps changed no device state"
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    b, opt_b = build(cfg, 1)  # built from another seed: differs until the checkpoint is loaded
    b.load_state_dict(state)
    assert torch.equal(a.weight, b.weight)
    for _ in range(2):
        step(a, opt_a, x)
        step(b, opt_b, x)
        for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
            assert ka == kb
            if isinstance(va, torch.Tensor):
                assert torch.equal(va, vb), (name, ka)


@pytest.mark.parametrize("alias, cls", [
    ("sgd", SoftBoundsDevice), ("mp", MixedPrecisionCompound), ("mixed-precision", MixedPrecisionCompound),
    ("tt", TransferCompound), ("ttv1", TransferCompound), ("tiki-taka", TransferCompound),
    ("ttv2", ChoppedTransferCompound), ("c-ttv2", ChoppedTransferCompound), ("chopped-ttv2", ChoppedTransferCompound),
    ("ttv3", ChoppedTransferCompound), ("agad", DynamicTransferCompound), ("ttv4", DynamicTransferCompound),
    ("TTv2", ChoppedTransferCompound),
])
def test_build_config_names(alias, cls):
    cfg = build_config(alias, SoftBoundsDevice())
    assert type(cfg.device) is cls
    assert alias.lower() in ALGORITHMS


def test_build_config_settings_and_overrides():
    ttv2 = build_config("ttv2", "reram_sb").device
    c_ttv2 = build_config("c-ttv2", "reram_sb").device
    assert ttv2.in_chop_prob == 0.0 and c_ttv2.in_chop_prob == 0.1
    assert ttv2.replace(in_chop_prob=0.1) == c_ttv2  # TTv2 is c-TTv2 without the chopper
    assert build_config("agad", "idealized").update.desired_bl == 5
    tt = build_config("tt", "ecram", gamma=0.1, transfer_every=2.0).device
    assert tt.gamma == 0.1 and tt.transfer_every == 2.0
    assert tt.transfer_forward.noise_management == "none" and tt.transfer_forward.bound_management == "none"
    vec = build_config("sgd", SoftBoundsDevice(), n_devices=3).device
    assert isinstance(vec, VectorUnitCell) and vec.update_policy == "single_random" and len(vec.unit_cell_devices) == 3


@pytest.mark.parametrize("call, match", [
    (lambda: build_config("tiki-taka", "reram_sb", gama=0.1), r"unknown field\(s\) gama of TransferCompound"),
    (lambda: build_config("ttv5", "reram_sb"), r"build_config.algorithm: 'ttv5' is not allowed"),
    (lambda: build_config("agad", "no_such_device"), "unknown device preset 'no_such_device'"),
    (lambda: build_config("agad", 3), r"build_config.device: 3 is not allowed"),
    (lambda: build_config("sgd", "reram_sb", gamma=0.1), "not allowed for 'sgd' with one device"),
    (lambda: build_config("agad", "reram_sb", n_devices=2), r"build_config.n_devices: 2 is not allowed"),
    (lambda: build_config("c-ttv2", "reram_sb", in_chop_prob=2.0), r"ChoppedTransferCompound.in_chop_prob: 2.0"),
])
def test_build_config_errors_name_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()
