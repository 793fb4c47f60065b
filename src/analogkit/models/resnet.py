"""The CIFAR ResNets of He, Zhang, Ren & Sun 2016, "Deep Residual Learning for Image Recognition"
(CVPR), Sec. 4.2: ResNet-20/32/44/56 with 6n+2 weighted layers.

Architecture: a 3×3 conv with 16 filters, then three stages of ``n`` basic blocks with 16, 32 and
64 filters on maps of 32×32, 16×16 and 8×8 (the first block of stages 2 and 3 subsamples with
stride 2), then global average pooling and a fully connected layer: 1 + 6n + 1 = 6n+2 conv/linear
layers. Each basic block is conv3×3 → BN → ReLU → conv3×3 → BN, plus the shortcut, then ReLU.

Shortcuts are the paper's **option A** (what it uses on CIFAR-10): identity; where the block
subsamples and widens, the input is taken at every second pixel and the new channels are filled
with zeros. Option A adds no parameters, so ResNet-20 has 0.27 M parameters as in the paper's
Table 6. Convolutions have no bias (BatchNorm follows each one) and are initialised as in He et
al. 2015 (normal, std sqrt(2 / fan_in)); BatchNorm starts at weight 1, bias 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from analogkit.models.mlp import _check_pos_int

STAGE_WIDTHS = (16, 32, 64)


class ZeroPadShortcut(nn.Module):
    """Parameter-free option-A shortcut: subsample by ``stride`` and append zero channels."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(
                f"ZeroPadShortcut: out_channels={out_channels} is not allowed; "
                f"use >= in_channels={in_channels}"
            )
        self.extra = out_channels - in_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra))  # zeros after the existing channels
        return x

    def extra_repr(self) -> str:
        return f"extra_channels={self.extra}, stride={self.stride}"


class BasicBlock(nn.Module):
    """Two 3×3 conv + BN layers with a shortcut: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + s(x))``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = ZeroPadShortcut(in_channels, out_channels, stride)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR ResNet of ``depth`` = 6n+2 layers (see the module docstring).

    Works on any image size (global average pooling); built for 32×32 CIFAR-10 images.
    """

    def __init__(self, depth: int = 20, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        _check_pos_int("ResNet", "depth", depth)
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(
                f"ResNet: depth={depth!r} is not allowed; use 6n+2 with n >= 1 (20, 32, 44, 56, 110, ...)"
            )
        _check_pos_int("ResNet", "num_classes", num_classes)
        _check_pos_int("ResNet", "in_channels", in_channels)
        n = (depth - 2) // 6
        self.depth = depth
        self.blocks_per_stage = n
        self.conv1 = nn.Conv2d(in_channels, STAGE_WIDTHS[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(STAGE_WIDTHS[0])
        stages = []
        width = STAGE_WIDTHS[0]
        for i, out in enumerate(STAGE_WIDTHS):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(BasicBlock(width, out, stride))
                width = out
            stages.append(nn.Sequential(*blocks))
        self.stage1, self.stage2, self.stage3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.stage3(self.stage2(self.stage1(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def resnet20(num_classes: int = 10, in_channels: int = 3) -> ResNet:
    """ResNet-20 (n = 3), 0.27 M parameters."""
    return ResNet(20, num_classes, in_channels)


def resnet32(num_classes: int = 10, in_channels: int = 3) -> ResNet:
    """ResNet-32 (n = 5), 0.46 M parameters."""
    return ResNet(32, num_classes, in_channels)


def resnet44(num_classes: int = 10, in_channels: int = 3) -> ResNet:
    """ResNet-44 (n = 7), 0.66 M parameters."""
    return ResNet(44, num_classes, in_channels)


def resnet56(num_classes: int = 10, in_channels: int = 3) -> ResNet:
    """ResNet-56 (n = 9), 0.85 M parameters."""
    return ResNet(56, num_classes, in_channels)
