"""Hardware-aware training wired into the tile, and its payoff after programming (fixed seeds)."""

import torch
from torch import nn

import analogkit
from analogkit.analysis import evaluate_over_time
from analogkit.config import IOConfig, MappingConfig, TileConfig
from analogkit.data import digits_loaders
from analogkit.experiments import evaluate, train_epoch
from analogkit.inference import PCMLikeNoise
from analogkit.inference.clipping import WeightClip
from analogkit.inference.modifiers import WeightModifier
from analogkit.models import MLP, LeNet5
from analogkit.nn import AnalogLinear, analog_layers, convert_to_analog, convert_to_digital
from analogkit.periphery.input_range import InputRangeConfig

EXACT = IOConfig.perfect()
YEAR = 365 * 24 * 3600.0


def test_modifier_applies_in_training_forward_only():
    cfg = TileConfig(forward=EXACT, backward=EXACT, modifier=WeightModifier(type="add_normal", std_dev=0.1))
    layer = AnalogLinear(64, 32, bias=False, config=cfg)
    x = torch.randn(256, 64)
    exact = x @ layer.weight.detach().T
    layer.train()
    y1, y2 = layer(x), layer(x)
    assert not torch.allclose(y1, exact, atol=1e-3) and not torch.allclose(y1, y2)
    layer.eval()
    assert torch.allclose(layer(x), exact, atol=1e-5)


def test_clip_bounds_the_parameter_before_each_training_forward():
    cfg = TileConfig(forward=EXACT, backward=EXACT, clip=WeightClip(type="fixed_value", fixed_value=0.05))
    layer = AnalogLinear(16, 8, config=cfg)
    with torch.no_grad():
        layer.weight.mul_(10)
    layer.eval()
    layer(torch.randn(2, 16))
    assert layer.weight.abs().max() > 0.05  # eval does not touch the parameter
    layer.train()
    layer(torch.randn(2, 16))
    assert layer.weight.abs().max() <= 0.05 + 1e-7


def test_learned_input_range_replaces_noise_management_and_learns():
    cfg = TileConfig(forward=IOConfig(out_noise=0.0), backward=EXACT,
                     input_range=InputRangeConfig(enable=True, init_from_data=5, init_std_alpha=3.0))
    analogkit.manual_seed(0)
    layer = AnalogLinear(32, 8, config=cfg)
    assert {n for n, _ in layer.named_parameters()} == {"weight", "bias", "tile.input_range.input_range"}
    opt = torch.optim.SGD(layer.parameters(), lr=0.01)
    x = torch.randn(512, 32) * 2.0
    for _ in range(5):  # data initialisation: r → 3·std(x) ≈ 6
        layer(x)
    r = layer.tile.input_range.range().item()
    assert abs(r - 6.0) < 0.3
    for _ in range(20):
        opt.zero_grad()
        layer(x).pow(2).mean().backward()
        opt.step()
    assert layer.tile.input_range.range().item() != r  # the range is trained
    # inputs beyond the range are clipped: a huge input gives the same output as one at the range
    layer.eval()
    big, edge = torch.full((1, 32), 1e3), torch.full((1, 32), layer.tile.input_range.range().item())
    assert torch.allclose(layer(big), layer(edge), atol=1e-4)


def _lenet_digital():
    analogkit.manual_seed(0)
    train, test = digits_loaders(batch_size=32, image=True)
    model = LeNet5(1, 10, 8)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(15):
        train_epoch(model, train, opt, progress=False)
    return model, test


def test_global_drift_compensation_improves_one_year_accuracy():
    # LeNet-5 on digits, programmed on PCM: after a year the conductances have shrunk to ≈ 50 %,
    # and the digital biases no longer match; compensation restores the scale. Measured with these
    # seeds: ≈ 0.96 with vs ≈ 0.89 without (std over repeats ≈ 0.02), so a 3-point margin.
    model, test = _lenet_digital()
    cfg = TileConfig(forward=IOConfig(out_noise=0.04, inp_res=1 / 254, out_res=1 / 254, out_bound=10),
                     backward=EXACT, mapping=MappingConfig(weight_scaling_omega=1.0, weight_scaling_columnwise=True))
    result = {}
    for comp in ("global", "none"):
        analogkit.manual_seed(1)
        analog = convert_to_analog(model, cfg.replace(drift_compensation=comp))
        result[comp] = evaluate_over_time(analog, test, [YEAR], repeats=6, progress=False).mean[0]
    assert result["global"] > result["none"] + 0.03, result


def test_hardware_aware_model_loses_fewer_points_at_one_year():
    # A noisy chip (PCM programming and read noise ×4) and a narrow MLP: the digitally trained
    # model loses ≈ 15 points after a year, the one trained with multiplicative weight noise and
    # clipping ≈ 7 (measured; std over 10 repeats ≈ 0.05–0.06 each, i.e. SE ≈ 0.02).
    analogkit.manual_seed(0)
    train, test = digits_loaders(batch_size=32)
    infer = TileConfig(
        forward=IOConfig(out_noise=0.04, inp_res=1 / 254, out_res=1 / 254, out_bound=10), backward=EXACT,
        noise_model=PCMLikeNoise(prog_noise_scale=4.0, read_noise_scale=4.0),
        mapping=MappingConfig(weight_scaling_omega=1.0, weight_scaling_columnwise=True),
    )
    hwa_cfg = infer.replace(modifier=WeightModifier(type="mult_normal", std_dev=0.3), clip=WeightClip(type="layer_gaussian", sigma=2.5))
    digital = MLP(64, (16,), 10)
    opt = torch.optim.SGD(digital.parameters(), lr=0.05, momentum=0.9)
    for _ in range(20):
        train_epoch(digital, train, opt, progress=False)
    analogkit.manual_seed(1)
    hwa = convert_to_analog(MLP(64, (16,), 10), hwa_cfg)
    opt = torch.optim.SGD(hwa.parameters(), lr=0.05, momentum=0.9)
    for _ in range(20):
        train_epoch(hwa, train, opt, progress=False)
    drops = {}
    for name, trained in (("digital", digital), ("hwa", convert_to_digital(hwa))):
        before = evaluate(trained, test)
        analogkit.manual_seed(2)
        chip = convert_to_analog(trained, infer)
        drops[name] = before - evaluate_over_time(chip, test, [YEAR], repeats=10, progress=False).mean[0]
    assert drops["hwa"] < drops["digital"] - 0.03, drops
