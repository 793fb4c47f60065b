"""LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998, "Gradient-based learning applied to document
recognition"), in its common modern form, sized for any square image of at least 4×4 pixels."""

from __future__ import annotations

import torch
from torch import nn

from analogkit.models.mlp import _check_pos_int, make_activation

# Input sizes of conv1 and conv2 in the original network (32×32 input): a 5×5 convolution whose
# input is smaller than this gets "same" padding 2 so the maps do not shrink away.
_ORIGINAL_CONV_INPUT = (32, 14)


def lenet_feature_size(image_size: int) -> tuple[int, int, int]:
    """``(conv1 padding, conv2 padding, side of the final 16-channel map)`` for ``image_size``."""
    side = image_size
    pads = []
    for original in _ORIGINAL_CONV_INPUT:
        pad = 2 if side < original else 0
        side = (side + 2 * pad - 4) // 2  # 5×5 conv, then 2×2 max pooling
        pads.append(pad)
    return pads[0], pads[1], side


class LeNet5(nn.Module):
    """LeNet-5: conv 6@5×5 → pool → conv 16@5×5 → pool → fc 120 → fc 84 → fc ``num_classes``.

    Choices (documented departures from the 1998 paper): 2×2 max pooling instead of trainable
    sub-sampling, a plain activation after every conv and hidden fc layer (``"tanh"`` by default,
    close to the paper's scaled tanh; ``"relu"`` also allowed), full conv2 connectivity (no
    connection table) and a plain linear output layer (no RBF units).

    Size adaptation: a 5×5 conv gets "same" padding 2 when its input is smaller than in the
    original 32×32 network (32 for conv1, 14 for conv2); otherwise it is unpadded. So 32×32
    (CIFAR-10) is the original network, 28×28 (MNIST) pads conv1 only — like LeCun et al.'s
    centring of the 28×28 digits in a 32×32 field — and both reach the classic 16×5×5 = 400
    features; 8×8 digits pad both convs and give 16×2×2 = 64 features. The first fc layer is
    sized to match. Inputs of shape (N, C·H·W) are reshaped to (N, C, H, W).
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        image_size: int = 28,
        activation: str = "tanh",
    ) -> None:
        super().__init__()
        _check_pos_int("LeNet5", "in_channels", in_channels)
        _check_pos_int("LeNet5", "num_classes", num_classes)
        _check_pos_int("LeNet5", "image_size", image_size)
        if image_size < 4:
            raise ValueError(f"LeNet5: image_size={image_size!r} is not allowed; use an integer >= 4")
        pad1, pad2, side = lenet_feature_size(image_size)
        self.in_channels = in_channels
        self.image_size = image_size
        self.num_classes = num_classes
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=pad1),
            make_activation(activation, "LeNet5"),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5, padding=pad2),
            make_activation(activation, "LeNet5"),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * side * side, 120),
            make_activation(activation, "LeNet5"),
            nn.Linear(120, 84),
            make_activation(activation, "LeNet5"),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.reshape(x.shape[0], self.in_channels, self.image_size, self.image_size)
        return self.classifier(self.features(x))
