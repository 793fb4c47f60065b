"""MNIST from local IDX files the test writes itself (plain and gzip)."""

import gzip
import struct

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from analogkit.data import MNIST_MEAN, MNIST_STD, load_mnist, mnist_loaders, read_idx


def idx_bytes(array: np.ndarray, code: int) -> bytes:
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=dtype).tobytes()


def write(path, data: bytes, gz: bool) -> None:
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def make_split(folder, prefix: str, n: int, seed: int, gz: bool = False):
    rng = np.random.RandomState(seed)
    images = rng.randint(0, 256, size=(n, 28, 28)).astype(np.uint8)
    labels = rng.randint(0, 10, size=n).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    write(folder / f"{prefix}-images-idx3-ubyte", idx_bytes(images, 0x08), gz)
    write(folder / f"{prefix}-labels-idx1-ubyte", idx_bytes(labels, 0x08), gz)
    return images, labels


@pytest.mark.parametrize("gz", [False, True])
def test_load_plain_and_gz(tmp_path, gz):
    images, labels = make_split(tmp_path, "train", 5, seed=0, gz=gz)
    ds = load_mnist(tmp_path, train=True)
    x, y = ds.tensors
    assert x.shape == (5, 1, 28, 28) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and y.tolist() == labels.tolist()
    expected = (images.astype(np.float32) / 255.0 - MNIST_MEAN) / MNIST_STD
    np.testing.assert_allclose(x[:, 0].numpy(), expected, rtol=1e-6, atol=1e-6)


def test_raw_subfolder_and_loaders(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    make_split(raw, "train", 5, seed=1, gz=True)
    _, test_labels = make_split(raw, "t10k", 3, seed=2)
    train, test = mnist_loaders(tmp_path, batch_size=2, seed=0)
    assert len(train.dataset) == 5 and len(test.dataset) == 3
    assert torch.cat([y for _, y in test]).tolist() == test_labels.tolist()
    a = torch.cat([y for _, y in train])
    b = torch.cat([y for _, y in mnist_loaders(tmp_path, batch_size=2, seed=0)[0]])
    assert torch.equal(a, b)


def test_wrong_magic_names_file(tmp_path):
    make_split(tmp_path, "train", 5, seed=0)
    path = tmp_path / "train-images-idx3-ubyte"
    data = bytearray(path.read_bytes())
    data[0] = 0x1F  # corrupt the magic number
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="train-images-idx3-ubyte") as err:
        load_mnist(tmp_path)
    assert "magic" in str(err.value)


def test_images_with_label_magic_rejected(tmp_path):
    make_split(tmp_path, "train", 5, seed=0)
    # a valid IDX file, but of 1 dimension (labels' magic 0x00000801) where images are expected
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros(5, np.uint8), 0x08))
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.*0x00000803"):
        load_mnist(tmp_path)


def test_truncated_file_and_count_mismatch(tmp_path):
    make_split(tmp_path, "train", 5, seed=0)
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte"):
        load_mnist(tmp_path)
    path.write_bytes(idx_bytes(np.zeros(4, np.uint8), 0x08))
    with pytest.raises(ValueError, match="4 labels"):
        load_mnist(tmp_path)


def test_missing_folder_and_files(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as err:
        load_mnist(missing)
    msg = str(err.value)
    assert "\n" not in msg and str(missing) in msg
    assert "train-images-idx3-ubyte" in msg and "train-labels-idx1-ubyte" in msg
    make_split(tmp_path, "train", 5, seed=0)
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte") as err:
        load_mnist(tmp_path, train=False)
    assert str(tmp_path) in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
        mnist_loaders(tmp_path)


@settings(max_examples=25, deadline=None)
@given(
    code=st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]),
    shape=st.lists(st.integers(0, 4), min_size=1, max_size=3),
    gz=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_read_idx_round_trip(tmp_path_factory, code, shape, gz, seed):
    rng = np.random.RandomState(seed)
    array = rng.randint(-100, 100, size=shape)
    if code == 0x08:
        array = np.abs(array)
    path = tmp_path_factory.mktemp("idx") / "a.idx"
    write(path, idx_bytes(array, code), gz)
    out = read_idx(str(path) + ".gz" if gz else path)
    assert out.shape == tuple(shape)
    np.testing.assert_array_equal(out, array)
    assert out.dtype.isnative
