"""The data-set registry: names, infos, build_loaders."""

import pytest

from analogkit.data import DATASET_INFO, DATASETS, DatasetInfo, build_loaders, dataset_info


def test_names_and_infos():
    assert list(DATASETS) == ["cifar10", "digits", "mnist"]
    assert list(DATASET_INFO) == list(DATASETS)
    assert dataset_info("digits") == DatasetInfo(
        "digits", (1, 8, 8), 10, dataset_info("digits").source, needs_root=False, default_batch_size=64
    )
    assert dataset_info("mnist").input_shape == (1, 28, 28)
    assert dataset_info("cifar10").input_shape == (3, 32, 32)
    assert all(dataset_info(n).num_classes == 10 for n in DATASETS)


def test_unknown_name_lists_known():
    with pytest.raises(ValueError, match="cifar10, digits, mnist"):
        build_loaders("imagenet")
    with pytest.raises(ValueError, match="cifar10, digits, mnist"):
        dataset_info("imagenet")


def test_digits_batches_match_info():
    train, test = build_loaders("digits", seed=0)
    x, y = next(iter(train))
    assert tuple(x.shape[1:]) == dataset_info("digits").input_shape
    assert x.shape[0] == dataset_info("digits").default_batch_size
    flat, _ = build_loaders("digits", batch_size=16, image=False)
    assert next(iter(flat))[0].shape == (16, 64)


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_root_required(name, tmp_path):
    with pytest.raises(ValueError, match="root"):
        build_loaders(name)
    with pytest.raises(FileNotFoundError):
        build_loaders(name, root=tmp_path)
