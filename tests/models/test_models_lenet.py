"""LeNet-5: forward shapes on 8×8 digits, 28×28 MNIST and 32×32 CIFAR; layer sizes."""

import pytest
import torch
from torch import nn

from analogkit.models import LeNet5


@pytest.mark.parametrize(
    "channels, size, features",
    [(1, 8, 16 * 2 * 2), (1, 28, 16 * 5 * 5), (3, 32, 16 * 5 * 5), (1, 4, 16), (3, 64, 16 * 13 * 13)],
)
def test_forward_shapes(channels, size, features):
    model = LeNet5(in_channels=channels, num_classes=10, image_size=size)
    assert model(torch.randn(2, channels, size, size)).shape == (2, 10)
    fc1 = [m for m in model.modules() if isinstance(m, nn.Linear)][0]
    assert fc1.in_features == features


def test_classic_layer_sizes_and_count():
    model = LeNet5(in_channels=1, num_classes=10, image_size=32)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    fcs = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(6, (5, 5)), (16, (5, 5))]
    assert [f.out_features for f in fcs] == [120, 84, 10]
    # 156 (conv1) + 2416 (conv2) + 48120 (fc 400→120) + 10164 (120→84) + 850 (84→10)
    assert sum(p.numel() for p in model.parameters()) == 61706
    # 28×28 (padded conv1) reaches the same 400 features, hence the same count
    assert sum(p.numel() for p in LeNet5(image_size=28).parameters()) == 61706


def test_flat_input_and_activation_choice():
    model = LeNet5(image_size=8, activation="relu")
    assert any(isinstance(m, nn.ReLU) for m in model.modules())
    assert model(torch.randn(3, 64)).shape == (3, 10)
    assert any(isinstance(m, nn.Tanh) for m in LeNet5().modules())
    with pytest.raises(ValueError, match="image_size"):
        LeNet5(image_size=3)
    with pytest.raises(ValueError, match="activation"):
        LeNet5(activation="step")
