"""Bundled digits: split sizes, stratification, standardisation, reproducible shuffling."""

import numpy as np
import pytest
import torch

from analogkit.data import digits_arrays, digits_datasets, digits_loaders

N_DIGITS = 1797


def test_split_sizes_and_shapes():
    train, test = digits_datasets(test_fraction=0.2, seed=0)
    assert len(train) + len(test) == N_DIGITS
    assert len(test) == 360  # sklearn: ceil(0.2 * 1797)
    x, y = train.tensors
    assert x.shape == (len(train), 64) and x.dtype == torch.float32
    assert y.dtype == torch.int64
    img_train, img_test = digits_datasets(test_fraction=0.2, seed=0, image=True)
    assert img_train.tensors[0].shape == (len(train), 1, 8, 8)
    assert img_test.tensors[0].shape == (len(test), 1, 8, 8)
    # image=True is just a reshape of the same data
    assert torch.equal(img_train.tensors[0].reshape(len(train), 64), x)


def test_stratified_split():
    train, test = digits_datasets(test_fraction=0.25, seed=3)
    ytr = np.bincount(train.tensors[1].numpy(), minlength=10)
    yte = np.bincount(test.tensors[1].numpy(), minlength=10)
    total = ytr + yte
    # every class keeps its share in the test split to within one sample
    assert np.all(np.abs(yte - 0.25 * total) <= 1.0)


def test_standardised_with_train_statistics():
    x_tr, _, x_te, _, mean, std = digits_arrays(test_fraction=0.2, seed=0)
    assert x_tr.dtype == np.float32
    assert abs(float(x_tr.astype(np.float64).mean())) < 1e-5
    assert abs(float(x_tr.astype(np.float64).std()) - 1.0) < 1e-5
    # the test split is NOT re-standardised: it uses the train numbers, so it is near but not at 0/1
    assert abs(float(x_te.mean())) < 0.1 and float(x_te.mean()) != pytest.approx(0.0, abs=1e-6)
    # mean/std refer to pixels scaled to [0, 1]
    assert 0.0 < mean < 1.0 and 0.0 < std < 1.0
    # the blank value 0 maps to -mean/std for both splits
    assert np.isclose(x_tr.min(), -mean / std, atol=1e-5)


def test_split_depends_on_seed_only():
    a, _ = digits_datasets(seed=1)
    b, _ = digits_datasets(seed=1)
    c, _ = digits_datasets(seed=2)
    assert torch.equal(a.tensors[0], b.tensors[0])
    assert not torch.equal(a.tensors[0], c.tensors[0])


def test_shuffling_repeats_with_seed_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = [y.clone() for _, y in digits_loaders(batch_size=100, seed=5)[0]]
    after = torch.rand(1)
    assert torch.equal(before, after)  # the loader did not draw from the global generator
    torch.manual_seed(999)
    second = [y.clone() for _, y in digits_loaders(batch_size=100, seed=5)[0]]
    assert all(torch.equal(p, q) for p, q in zip(first, second))
    other = [y.clone() for _, y in digits_loaders(batch_size=100, seed=6)[0]]
    assert not torch.equal(torch.cat(first), torch.cat(other))


def test_loaders_shapes_and_test_order():
    train, test = digits_loaders(batch_size=32, image=True)
    x, y = next(iter(train))
    assert x.shape == (32, 1, 8, 8) and y.shape == (32,)
    a = torch.cat([y for _, y in test])
    b = torch.cat([y for _, y in test])
    assert torch.equal(a, b)  # test loader is not shuffled


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"test_fraction": 0.0}, "test_fraction"),
        ({"test_fraction": 1.5}, "test_fraction"),
        ({"seed": -1}, "seed"),
        ({"batch_size": 0}, "batch_size"),
        ({"image": "yes"}, "image"),
    ],
)
def test_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        digits_loaders(**kwargs)
