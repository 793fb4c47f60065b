"""The bundled 8×8 hand-written digits data set (no download needed), plus shared loader helpers.

The data are the test part of the UCI "Optical Recognition of Handwritten Digits" data set
(Alpaydin & Kaynak 1998, UCI Machine Learning Repository), as shipped with scikit-learn in
:func:`sklearn.datasets.load_digits`: 1797 grey-scale images of 8×8 pixels with integer values
0–16 and 10 classes (about 180 images per class).

The helpers :func:`check_loader_args` and :func:`make_loaders` are shared by the MNIST and
CIFAR-10 loaders of this package.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

DIGITS_NUM_CLASSES = 10
DIGITS_IMAGE_SHAPE = (1, 8, 8)
DIGITS_MAX_VALUE = 16.0  # pixel values of sklearn's digits are integers 0..16


# -- shared helpers ------------------------------------------------------------------------------
def _check_int(where: str, name: str, value: Any, lo: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ValueError(f"{where}: {name}={value!r} is not allowed; use an integer >= {lo}")


def check_loader_args(where: str, batch_size: Any, seed: Any, num_workers: Any = 0) -> None:
    """Validate the arguments every ``*_loaders`` function takes; raise ``ValueError`` naming them."""
    _check_int(where, "batch_size", batch_size, 1)
    _check_int(where, "seed", seed, 0)
    _check_int(where, "num_workers", num_workers, 0)


def make_loaders(
    train: Dataset,
    test: Dataset,
    batch_size: int,
    seed: int,
    num_workers: int = 0,
) -> tuple[DataLoader, DataLoader]:
    """A shuffling train loader and an ordered test loader.

    The train loader shuffles with its own ``torch.Generator`` seeded with ``seed`` (never the
    global generator), so the order of batches repeats from run to run. Worker processes (if
    ``num_workers > 0``) get their seeds from that generator too.
    """
    gen = torch.Generator().manual_seed(int(seed))
    train_loader = DataLoader(
        train, batch_size=batch_size, shuffle=True, generator=gen, num_workers=num_workers
    )
    test_loader = DataLoader(test, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    return train_loader, test_loader


# -- digits --------------------------------------------------------------------------------------
def digits_arrays(
    test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Split and standardise the digits: ``(x_train, y_train, x_test, y_test, mean, std)``.

    ``x_*`` are float32 arrays of shape (N, 64); ``y_*`` int64 labels. Pixels are first scaled to
    [0, 1] (divided by 16), then standardised with one scalar ``mean`` and ``std`` computed over all
    pixels of the TRAIN split (population std); the test split uses the same two numbers. A single
    scalar (rather than per-pixel statistics) keeps the images' relative contrast and avoids
    dividing by the near-zero spread of the almost always blank border pixels; it mirrors the
    single mean/std used for MNIST. The split is stratified by class and depends only on ``seed``
    (scikit-learn's ``train_test_split`` with ``random_state=seed``; no global RNG is touched).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if (
        isinstance(test_fraction, bool)
        or not isinstance(test_fraction, (int, float))
        or not 0.0 < float(test_fraction) < 1.0
    ):
        raise ValueError(
            f"digits: test_fraction={test_fraction!r} is not allowed; use a number in (0, 1)"
        )
    _check_int("digits", "seed", seed, 0)
    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float64) / DIGITS_MAX_VALUE
    y = y.astype(np.int64)
    try:
        x_tr, x_te, y_tr, y_te = train_test_split(
            x, y, test_size=float(test_fraction), random_state=int(seed), stratify=y, shuffle=True
        )
    except ValueError as err:  # e.g. fewer test samples than classes
        raise ValueError(
            f"digits: test_fraction={test_fraction!r} is not allowed for a stratified split of "
            f"{len(y)} samples in {DIGITS_NUM_CLASSES} classes ({err})"
        ) from None
    mean = float(x_tr.mean())
    std = float(x_tr.std())
    x_tr = ((x_tr - mean) / std).astype(np.float32)
    x_te = ((x_te - mean) / std).astype(np.float32)
    return x_tr, y_tr, x_te, y_te, mean, std


def digits_datasets(
    test_fraction: float = 0.2, seed: int = 0, image: bool = False
) -> tuple[TensorDataset, TensorDataset]:
    """Train and test :class:`~torch.utils.data.TensorDataset` of the bundled 8×8 digits.

    Inputs are float32, scaled to [0, 1] and then standardised with the train split's scalar
    mean/std (see :func:`digits_arrays`); flat 64-vectors if ``image`` is false, else (1, 8, 8)
    images. Labels are int64 in 0..9. The split is stratified and deterministic from ``seed``.
    """
    if not isinstance(image, bool):
        raise ValueError(f"digits: image={image!r} is not allowed; use True or False")
    x_tr, y_tr, x_te, y_te, _, _ = digits_arrays(test_fraction, seed)
    shape = DIGITS_IMAGE_SHAPE if image else (int(np.prod(DIGITS_IMAGE_SHAPE)),)
    train = TensorDataset(
        torch.from_numpy(x_tr).reshape(-1, *shape), torch.from_numpy(y_tr)
    )
    test = TensorDataset(torch.from_numpy(x_te).reshape(-1, *shape), torch.from_numpy(y_te))
    return train, test


def digits_loaders(
    batch_size: int = 64,
    test_fraction: float = 0.2,
    seed: int = 0,
    image: bool = False,
    num_workers: int = 0,
) -> tuple[DataLoader, DataLoader]:
    """``(train_loader, test_loader)`` over :func:`digits_datasets`.

    ``seed`` fixes both the train/test split and the train loader's shuffling (its own
    ``torch.Generator``), so two calls with the same arguments yield the same batches.
    """
    check_loader_args("digits_loaders", batch_size, seed, num_workers)
    train, test = digits_datasets(test_fraction=test_fraction, seed=seed, image=image)
    return make_loaders(train, test, batch_size, seed, num_workers)
