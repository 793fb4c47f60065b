"""convert_to_analog / convert_to_digital on nested models, shared modules, exclusions, per-layer configs."""

import pytest
import torch
from torch import nn

from analogkit.config import IOConfig, TileConfig
from analogkit.nn import (
    AnalogConv2d, AnalogLinear, AnalogSequential, analog_layers, convert_to_analog, convert_to_digital,
)

FP = TileConfig.floating_point()


class Block(nn.Module):
    def __init__(self, shared: nn.Linear):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, groups=2))
        self.shared = shared
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 6 * 6, 16))

    def forward(self, x):
        return self.shared(torch.relu(self.head(self.features(x))))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        shared = nn.Linear(16, 16)
        self.block = Block(shared)
        self.again = shared  # the same module used in two places
        self.out = nn.Linear(16, 3)
        self.norm = nn.LayerNorm(16)

    def forward(self, x):
        return self.out(self.norm(self.again(self.block(x))))


def test_nested_model_with_shared_submodule_preserves_outputs():
    torch.manual_seed(0)
    model = Net()
    x = torch.randn(5, 1, 8, 8)
    analog = convert_to_analog(model, FP)
    assert torch.allclose(analog(x), model(x), atol=1e-5)
    assert analog.block.shared is analog.again and isinstance(analog.again, AnalogLinear)
    assert isinstance(analog.block.features[0], AnalogConv2d) and isinstance(analog.block.features[2], AnalogConv2d)
    assert isinstance(analog.norm, nn.LayerNorm)
    assert len(list(analog_layers(analog))) == 5  # shared layer counted once
    # the original is untouched
    assert isinstance(model.out, nn.Linear) and not list(analog_layers(model))


def test_round_trip_to_digital_restores_types_and_outputs():
    torch.manual_seed(1)
    model = Net()
    back = convert_to_digital(convert_to_analog(model, FP))
    assert not list(analog_layers(back))
    assert type(back.block.features[2]) is nn.Conv2d and back.block.features[2].groups == 2
    assert back.block.shared is back.again
    x = torch.randn(2, 1, 8, 8)
    assert torch.allclose(back(x), model(x), atol=1e-6)


def test_exclude_by_name_pattern_type_and_predicate():
    model = Net()
    a = convert_to_analog(model, FP, exclude=["out", "block.features.*"])
    assert isinstance(a.out, nn.Linear) and isinstance(a.block.features[0], nn.Conv2d)
    assert isinstance(a.block.head[1], AnalogLinear)
    b = convert_to_analog(model, FP, exclude=[nn.Conv2d])
    assert isinstance(b.block.features[0], nn.Conv2d) and isinstance(b.out, AnalogLinear)
    c = convert_to_analog(model, FP, exclude=[lambda name, m: isinstance(m, nn.Linear) and m.out_features == 3])
    assert isinstance(c.out, nn.Linear) and isinstance(c.block.head[1], AnalogLinear)
    with pytest.raises(TypeError, match="exclude"):
        convert_to_analog(model, FP, exclude=[3])


def test_per_layer_config_and_none_keeps_digital():
    noisy = TileConfig(forward=IOConfig(out_noise=0.2))

    def choose(name, module):
        if name == "out":
            return None
        return noisy if isinstance(module, nn.Conv2d) else FP

    a = convert_to_analog(Net(), per_layer=choose)
    assert isinstance(a.out, nn.Linear)
    assert a.block.features[0].config == noisy
    assert a.block.head[1].config == FP
    with pytest.raises(TypeError, match="per_layer: returned dict"):
        convert_to_analog(Net(), per_layer=lambda n, m: {})


def test_root_sequential_becomes_analog_sequential_and_inplace():
    seq = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    a = convert_to_analog(seq, FP)
    assert type(a) is AnalogSequential and len(list(a.analog_layers())) == 2
    assert isinstance(seq[0], nn.Linear)
    b = convert_to_analog(seq, FP, inplace=True)
    assert isinstance(seq[0], AnalogLinear) and b[0] is seq[0]
    assert type(convert_to_digital(a)) is nn.Sequential


def test_root_layer_itself_is_converted():
    assert isinstance(convert_to_analog(nn.Linear(3, 2), FP), AnalogLinear)


def test_training_mode_is_kept():
    m = nn.Sequential(nn.Linear(3, 3)).eval()
    assert not convert_to_analog(m, FP)[0].training
