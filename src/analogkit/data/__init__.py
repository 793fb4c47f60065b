"""Data sets: the bundled 8×8 digits, and MNIST / CIFAR-10 read from local folders (no downloads).

``DATASETS`` maps a name to a function building ``(train_loader, test_loader)``;
``DATASET_INFO`` maps the same names to a :class:`DatasetInfo` (input shape of one sample and
number of classes), which is what a model needs to be built. :func:`build_loaders` is the
front door::

    info = dataset_info("digits")                 # DatasetInfo(name='digits', input_shape=(1, 8, 8), ...)
    train, test = build_loaders("digits", batch_size=64, seed=0)
    train, test = build_loaders("mnist", root="~/data/mnist")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from torch.utils.data import DataLoader

from analogkit.config.base import Registry
from analogkit.data.cifar import (
    CIFAR10_IMAGE_SHAPE,
    CIFAR10_MEAN,
    CIFAR10_NUM_CLASSES,
    CIFAR10_STD,
    RandomCropFlip,
    cifar10_loaders,
    load_cifar10,
)
from analogkit.data.digits import (
    DIGITS_IMAGE_SHAPE,
    DIGITS_NUM_CLASSES,
    digits_arrays,
    digits_datasets,
    digits_loaders,
)
from analogkit.data.mnist import (
    MNIST_IMAGE_SHAPE,
    MNIST_MEAN,
    MNIST_NUM_CLASSES,
    MNIST_STD,
    load_mnist,
    mnist_loaders,
    read_idx,
)


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a data set.

    ``input_shape`` is the shape of one sample as :func:`build_loaders` yields it (without the
    batch dimension); ``needs_root`` says whether the files must be given with ``root=``.
    """

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    source: str
    needs_root: bool = False
    default_batch_size: int = 64


DATASETS = Registry("data set")
DATASET_INFO = Registry("data set")


def _register(info: DatasetInfo, build: Callable[..., tuple[DataLoader, DataLoader]]) -> None:
    DATASETS.add(info.name, build)
    DATASET_INFO.add(info.name, info)


def _digits(root: str | Path | None, batch_size: int, seed: int, **kw: Any) -> tuple[DataLoader, DataLoader]:
    # root is ignored: the digits ship with scikit-learn. Images by default, to match input_shape.
    kw.setdefault("image", True)
    return digits_loaders(batch_size=batch_size, seed=seed, **kw)


def _mnist(root: str | Path, batch_size: int, seed: int, **kw: Any) -> tuple[DataLoader, DataLoader]:
    return mnist_loaders(root, batch_size=batch_size, seed=seed, **kw)


def _cifar10(root: str | Path, batch_size: int, seed: int, **kw: Any) -> tuple[DataLoader, DataLoader]:
    return cifar10_loaders(root, batch_size=batch_size, seed=seed, **kw)


_register(
    DatasetInfo(
        "digits",
        DIGITS_IMAGE_SHAPE,
        DIGITS_NUM_CLASSES,
        "UCI optical hand-written digits (Alpaydin & Kaynak 1998), 1797 images 8x8, "
        "bundled with scikit-learn",
        needs_root=False,
        default_batch_size=64,
    ),
    _digits,
)
_register(
    DatasetInfo(
        "mnist",
        MNIST_IMAGE_SHAPE,
        MNIST_NUM_CLASSES,
        "MNIST (LeCun, Bottou, Bengio & Haffner 1998), 60000+10000 images 28x28, local IDX files",
        needs_root=True,
        default_batch_size=64,
    ),
    _mnist,
)
_register(
    DatasetInfo(
        "cifar10",
        CIFAR10_IMAGE_SHAPE,
        CIFAR10_NUM_CLASSES,
        "CIFAR-10 (Krizhevsky 2009), 50000+10000 colour images 32x32, local python batches",
        needs_root=True,
        default_batch_size=128,
    ),
    _cifar10,
)


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of a registered data set; unknown names raise ``ValueError``."""
    return DATASET_INFO.get(name)


def build_loaders(
    name: str,
    root: str | Path | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    **kw: Any,
) -> tuple[DataLoader, DataLoader]:
    """``(train_loader, test_loader)`` of the data set ``name`` (one of :data:`DATASETS`).

    ``root`` is the folder with the files (required for ``"mnist"`` and ``"cifar10"``, ignored for
    the bundled ``"digits"``); ``batch_size`` defaults to the data set's
    ``DatasetInfo.default_batch_size``; ``seed`` fixes shuffling (and the digits split and CIFAR
    augmentation). Further keywords go to the data set's loader function, e.g. ``image=False``
    for digits (flat 64-vectors instead of the default (1, 8, 8) images), ``augment=False`` for
    CIFAR-10, ``num_workers`` for all.
    """
    build = DATASETS.get(name)
    info: DatasetInfo = DATASET_INFO.get(name)
    if info.needs_root and root is None:
        raise ValueError(
            f"build_loaders: data set {name!r} needs root=<folder with its files>; it is not bundled"
        )
    if batch_size is None:
        batch_size = info.default_batch_size
    return build(root, batch_size, seed, **kw)


__all__ = [
    "DATASETS",
    "DATASET_INFO",
    "DatasetInfo",
    "build_loaders",
    "dataset_info",
    "digits_arrays",
    "digits_datasets",
    "digits_loaders",
    "load_mnist",
    "mnist_loaders",
    "read_idx",
    "load_cifar10",
    "cifar10_loaders",
    "RandomCropFlip",
    "MNIST_MEAN",
    "MNIST_STD",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
]
