"""Reference networks in plain ``torch.nn`` (converted to analog layers elsewhere in the library).

``MODELS`` maps a name to a builder ``(input_shape, num_classes, **kw) -> nn.Module``;
:func:`build_model` is the front door, e.g. with a data set's
:class:`~analogkit.data.DatasetInfo`::

    model = build_model("lenet5", info.input_shape, info.num_classes)
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from torch import nn

from analogkit.config.base import Registry
from analogkit.models.lenet import LeNet5
from analogkit.models.mlp import MLP
from analogkit.models.resnet import BasicBlock, ResNet, resnet20, resnet32, resnet44, resnet56

MODELS = Registry("model")


def _image_shape(name: str, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        raise ValueError(
            f"build_model: input_shape={input_shape!r} is not allowed for {name!r}; "
            "use an image shape (channels, height, width)"
        )
    return input_shape  # type: ignore[return-value]


def _mlp(input_shape: tuple[int, ...], num_classes: int, **kw: Any) -> nn.Module:
    return MLP(math.prod(input_shape), num_classes=num_classes, **kw)


def _lenet5(input_shape: tuple[int, ...], num_classes: int, **kw: Any) -> nn.Module:
    c, h, w = _image_shape("lenet5", input_shape)
    if h != w:
        raise ValueError(
            f"build_model: input_shape={input_shape!r} is not allowed for 'lenet5'; use square images"
        )
    return LeNet5(in_channels=c, num_classes=num_classes, image_size=h, **kw)


def _resnet(depth: int):  # type: ignore[no-untyped-def]
    def build(input_shape: tuple[int, ...], num_classes: int, **kw: Any) -> nn.Module:
        c, _, _ = _image_shape(f"resnet{depth}", input_shape)
        return ResNet(depth, num_classes=num_classes, in_channels=c, **kw)

    return build


MODELS.add("mlp", _mlp)
MODELS.add("lenet5", _lenet5)
for _depth in (20, 32, 44, 56):
    MODELS.add(f"resnet{_depth}", _resnet(_depth))


def build_model(name: str, input_shape: Sequence[int], num_classes: int, **kw: Any) -> nn.Module:
    """Build the reference model ``name`` (one of :data:`MODELS`) for samples of ``input_shape``
    (without the batch dimension) and ``num_classes`` classes; ``kw`` go to the model class
    (e.g. ``hidden=(128, 64)`` or ``activation="tanh"`` for ``"mlp"``)."""
    builder = MODELS.get(name)
    shape = tuple(input_shape)
    if not shape or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape):
        raise ValueError(
            f"build_model: input_shape={input_shape!r} is not allowed; use a tuple of positive integers"
        )
    return builder(shape, num_classes, **kw)


__all__ = [
    "MODELS",
    "build_model",
    "MLP",
    "LeNet5",
    "ResNet",
    "BasicBlock",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
]
