"""A multi-layer perceptron: the simplest reference network (fully connected layers only)."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
}


def make_activation(name: str, where: str = "activation") -> nn.Module:
    """A fresh activation module by name (one of :data:`ACTIVATIONS`)."""
    if name not in ACTIVATIONS:
        raise ValueError(
            f"{where}: activation={name!r} is not allowed; use one of "
            + ", ".join(repr(a) for a in ACTIVATIONS)
        )
    return ACTIVATIONS[name]()


def _check_pos_int(where: str, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}: {name}={value!r} is not allowed; use an integer >= 1")
    return value


class MLP(nn.Module):
    """Fully connected network ``Flatten → (Linear → activation) × len(hidden) → Linear``.

    The input is flattened from dimension 1 on, so (N, 64) vectors and (N, 1, 8, 8) images both
    work as long as they have ``in_features`` values per sample. ``hidden=()`` gives a linear
    classifier. Layers use PyTorch's default initialisation.
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (64,),
        num_classes: int = 10,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        _check_pos_int("MLP", "in_features", in_features)
        _check_pos_int("MLP", "num_classes", num_classes)
        if isinstance(hidden, int):
            hidden = (hidden,)
        hidden = tuple(hidden)
        for h in hidden:
            _check_pos_int("MLP", "hidden", h)
        self.in_features = in_features
        self.hidden = hidden
        self.num_classes = num_classes
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), make_activation(activation, "MLP")]
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
