"""Checkpoints round-trip bit-exactly (weights, config, generator) and load with weights_only=True."""

import io as _io

import pytest
import torch
from torch import nn

import analogkit
from analogkit.config import IOConfig, MappingConfig, TileConfig
from analogkit.nn import AnalogConv2d, AnalogLinear, convert_to_analog, seed_tiles, tile_configs_in
from analogkit.tile import ConfigMismatchError

CFG = TileConfig(
    forward=IOConfig(out_noise=0.1, inp_sto_round=True),
    mapping=MappingConfig(max_input_size=32, max_output_size=16, learn_out_scaling=True, out_scaling_columnwise=True),
)


def build(config=CFG):
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 20), nn.ReLU(), nn.Linear(20, 3))
    return convert_to_analog(model, config)


def save_load(obj):
    buf = _io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_round_trip_is_bit_exact_including_generators():
    analogkit.manual_seed(0)
    a = build()
    x = torch.randn(6, 1, 8, 8)
    a(x)  # advance the generators
    state = save_load(a.state_dict())
    analogkit.manual_seed(123)  # a differently seeded model...
    b = build()
    b.load_state_dict(state)  # ...becomes identical
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb
        if isinstance(va, torch.Tensor):
            assert torch.equal(va, vb), ka
    # the same noise is drawn next: outputs identical, bit for bit
    assert torch.equal(a(x), b(x))
    assert torch.equal(a(x), b(x))


def test_extra_state_is_plain_data():
    state = build().state_dict()
    extra = state["0.tile._extra_state"]
    assert set(extra) == {"format", "config", "generator_state", "generator_device"}
    assert isinstance(extra["config"], dict) and extra["config"]["forward"]["out_noise"] == 0.1
    assert tile_configs_in(state)["0.tile"] == CFG


def test_loading_into_a_model_with_another_config_says_so():
    state = build().state_dict()
    other = build(CFG.replace(forward=IOConfig(out_noise=0.02)))
    with pytest.raises(ConfigMismatchError, match=r"forward.out_noise: 0.1 vs 0.02"):
        other.load_state_dict(state)


def test_optimizer_and_model_checkpoint_resume_training_exactly():
    # train 3 steps, checkpoint, train 3 more; a resumed copy must end bit-identical
    def step(model, opt, x, y):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    analogkit.manual_seed(1)
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 3, (8,))
    a = build()
    opt_a = torch.optim.SGD(a.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        step(a, opt_a, x, y)
    ckpt = save_load({"model": a.state_dict(), "opt": opt_a.state_dict()})
    for _ in range(3):
        step(a, opt_a, x, y)
    analogkit.manual_seed(99)
    b = build()
    opt_b = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9)
    b.load_state_dict(ckpt["model"])
    opt_b.load_state_dict(ckpt["opt"])
    for _ in range(3):
        step(b, opt_b, x, y)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_manual_seed_repeats_a_whole_run_and_seeds_differ_per_tile():
    def run():
        analogkit.manual_seed(7)
        model = build()
        return model(torch.randn(4, 1, 8, 8)), [t.generator.initial_seed() for t in (model[0].tile, model[3].tile)]

    (y1, seeds1), (y2, seeds2) = run(), run()
    assert torch.equal(y1, y2) and seeds1 == seeds2
    assert seeds1[0] != seeds1[1]


def test_seed_tiles_reseeds_every_tile():
    a, b = build(), build()
    with torch.no_grad():
        for pa, pb in zip(a.parameters(), b.parameters()):
            pb.copy_(pa)
    seed_tiles(a, 5)
    seed_tiles(b, 5)
    x = torch.randn(3, 1, 8, 8)
    assert torch.equal(a(x), b(x))


def test_manual_seed_rejects_bad_seed():
    with pytest.raises(ValueError, match="manual_seed: seed -1 is not allowed"):
        analogkit.manual_seed(-1)


def test_deepcopy_keeps_generator_state():
    import copy

    layer = AnalogLinear(5, 3)
    twin = copy.deepcopy(layer)
    x = torch.randn(2, 5)
    assert torch.equal(layer(x), twin(x))


def test_conv_checkpoint_round_trip():
    a = AnalogConv2d(2, 4, 3, groups=2)
    b = AnalogConv2d(2, 4, 3, groups=2)
    b.load_state_dict(save_load(a.state_dict()))
    x = torch.randn(1, 2, 5, 5)
    assert torch.equal(a(x), b(x))


def test_whole_pulsed_model_saves_and_trains_on_identically():
    """torch.save(model) (not only its state_dict): the tiles' update handles pickle and point at
    the loaded tiles, and the loaded copy trains on bit for bit as the original."""
    from analogkit.compounds import build_config
    from analogkit.devices import SoftBoundsDevice
    from analogkit.optim import AnalogSGD

    analogkit.manual_seed(0)
    model = nn.Sequential(AnalogLinear(6, 5, config=build_config("c-ttv2", SoftBoundsDevice())), nn.ReLU(),
                          AnalogLinear(5, 3, config=build_config("tiki-taka", SoftBoundsDevice())))
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(1))
    model(x).sum().backward()  # a pending update and advanced generators go into the file
    AnalogSGD(model.parameters(), lr=0.1).step()
    buf = _io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    twin = torch.load(buf, weights_only=False)
    for layer in (0, 2):
        assert twin[layer].tile.update_handle._analog_tile() is twin[layer].tile
    for m in (model, twin):
        opt = AnalogSGD(m.parameters(), lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            m(x).square().sum().backward()
            opt.step()
    for layer in (0, 2):
        for name, t in model[layer].tile.device_state.tensors().items():
            assert torch.equal(t, twin[layer].tile.device_state.tensors()[name]), name
    assert torch.equal(model(x), twin(x))
