"""MLP: shapes, arguments, and that it learns the bundled digits."""

import pytest
import torch
from torch import nn

from analogkit.data import digits_loaders
from analogkit.models import MLP


def test_forward_shape_flattens_input():
    model = MLP(64, hidden=(32, 16), num_classes=7)
    assert model(torch.randn(5, 64)).shape == (5, 7)
    assert model(torch.randn(5, 1, 8, 8)).shape == (5, 7)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 32), (32, 16), (16, 7)]


def test_linear_classifier_and_activations():
    assert len([m for m in MLP(10, hidden=()).modules() if isinstance(m, nn.Linear)]) == 1
    assert any(isinstance(m, nn.Tanh) for m in MLP(10, activation="tanh").modules())
    with pytest.raises(ValueError, match="activation"):
        MLP(10, activation="swish")
    with pytest.raises(ValueError, match="in_features"):
        MLP(0)
    with pytest.raises(ValueError, match="hidden"):
        MLP(10, hidden=(8, 0))


def test_mlp_learns_digits():
    torch.manual_seed(0)
    train, test = digits_loaders(batch_size=64, seed=0)
    model = MLP(64, hidden=(64,), num_classes=10)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)  # plain SGD, no momentum; about 0.97 reached
    for _ in range(30):
        for x, y in train:
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    with torch.no_grad():
        correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in test)
    assert correct / len(test.dataset) > 0.90
