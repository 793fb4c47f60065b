"""CIFAR ResNets (He et al. 2016): shapes, depth 6n+2, parameter counts, option-A shortcuts."""

import pytest
import torch
from torch import nn

from analogkit.models import ResNet, resnet20, resnet32, resnet44, resnet56
from analogkit.models.resnet import ZeroPadShortcut


def weighted_layers(model):
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


@pytest.mark.parametrize("factory, n", [(resnet20, 3), (resnet32, 5), (resnet44, 7), (resnet56, 9)])
def test_depth_is_6n_plus_2(factory, n):
    model = factory()
    assert len(weighted_layers(model)) == 6 * n + 2 == model.depth
    assert model.blocks_per_stage == n


def test_resnet20_parameter_count():
    # Option-A shortcuts are parameter-free, convs have no bias:
    #   conv1 3·16·9 = 432, BN 32
    #   stage1 6 convs 16·16·9 = 13824, 6 BN·32 = 192
    #   stage2 32·16·9 + 5·32·32·9 = 50688, 6 BN·64 = 384
    #   stage3 64·32·9 + 5·64·64·9 = 202752, 6 BN·128 = 768
    #   fc 64·10 + 10 = 650             → 269,722 ≈ 0.27 M (He et al. 2016, Table 6)
    assert sum(p.numel() for p in resnet20().parameters()) == 269_722
    assert sum(p.numel() for p in resnet56().parameters()) == 853_018  # ≈ 0.85 M


def test_forward_shapes():
    model = resnet20(num_classes=7)
    model.eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)
    gray = resnet20(in_channels=1)
    assert gray(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert gray(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_stage_shapes_and_shortcuts():
    model = resnet32()
    x = torch.randn(1, 3, 32, 32)
    x = model.stage1(torch.relu(model.bn1(model.conv1(x))))
    assert x.shape == (1, 16, 32, 32)
    x = model.stage2(x)
    assert x.shape == (1, 32, 16, 16)
    assert model.stage3(x).shape == (1, 64, 8, 8)
    shortcuts = [m for m in model.modules() if isinstance(m, ZeroPadShortcut)]
    assert len(shortcuts) == 2  # first block of stages 2 and 3
    assert all(sum(p.numel() for p in s.parameters()) == 0 for s in shortcuts)


def test_zero_pad_shortcut_values():
    x = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 2, 4, 4)
    out = ZeroPadShortcut(2, 4, stride=2)(x)
    assert out.shape == (1, 4, 2, 2)
    assert torch.equal(out[:, :2], x[:, :, ::2, ::2])
    assert torch.count_nonzero(out[:, 2:]) == 0


def test_backward_runs():
    model = resnet20()
    loss = model(torch.randn(4, 3, 16, 16)).sum()
    loss.backward()
    assert model.conv1.weight.grad is not None


@pytest.mark.parametrize("depth", [0, 7, 21, 19])
def test_bad_depth(depth):
    with pytest.raises(ValueError, match="depth"):
        ResNet(depth)
