"""The model registry and build_model, with the data sets' infos."""

import pytest
import torch

from analogkit.data import dataset_info
from analogkit.models import MODELS, MLP, LeNet5, ResNet, build_model


def test_names():
    assert list(MODELS) == ["lenet5", "mlp", "resnet20", "resnet32", "resnet44", "resnet56"]


@pytest.mark.parametrize("data", ["digits", "mnist", "cifar10"])
@pytest.mark.parametrize("name", ["mlp", "lenet5", "resnet20"])
def test_build_for_every_dataset(name, data):
    info = dataset_info(data)
    model = build_model(name, info.input_shape, info.num_classes)
    model.eval()
    out = model(torch.randn(2, *info.input_shape))
    assert out.shape == (2, info.num_classes)


def test_types_and_kwargs():
    assert isinstance(build_model("mlp", (64,), 10, hidden=(8,)), MLP)
    assert isinstance(build_model("lenet5", (1, 28, 28), 10, activation="relu"), LeNet5)
    model = build_model("resnet44", (3, 32, 32), 100)
    assert isinstance(model, ResNet) and model.depth == 44 and model.fc.out_features == 100


def test_errors():
    with pytest.raises(ValueError, match="lenet5, mlp, resnet20"):
        build_model("vgg16", (3, 32, 32), 10)
    with pytest.raises(ValueError, match="input_shape"):
        build_model("lenet5", (64,), 10)
    with pytest.raises(ValueError, match="input_shape"):
        build_model("lenet5", (1, 8, 9), 10)
    with pytest.raises(ValueError, match="input_shape"):
        build_model("mlp", (0, 8), 10)
