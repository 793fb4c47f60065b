"""CIFAR-10 from tiny pickled batches the test writes itself; seeded augmentation."""

import pickle
import struct

import numpy as np
import pytest
import torch

from analogkit.data import CIFAR10_MEAN, CIFAR10_STD, RandomCropFlip, cifar10_loaders, load_cifar10

PER_BATCH = 4


def py2_pickle(data: np.ndarray, labels) -> bytes:
    """A batch pickled as Python 2's cPickle (protocol 2) wrote the official files: str keys and
    raw data as byte strings, numpy globals under ``numpy.core``. Opcodes written by hand."""

    def string(b):
        return b"U" + bytes([len(b)]) + b  # SHORT_BINSTRING

    def integer(i):
        return b"K" + bytes([i]) if 0 <= i < 256 else b"J" + struct.pack("<i", i)

    n, m = data.shape
    array = (
        b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n" + integer(0) + b"\x85"
        + string(b"b") + b"\x87R"
        + b"(" + integer(1) + integer(n) + b"M" + struct.pack("<H", m) + b"\x86"
        + b"cnumpy\ndtype\n" + string(b"u1") + integer(0) + integer(1) + b"\x87R"
        + b"(" + integer(3) + string(b"|") + b"NNN" + integer(-1) + integer(-1) + integer(0) + b"tb"
        + b"\x89" + b"T" + struct.pack("<I", data.nbytes) + data.tobytes() + b"tb"
    )
    label_list = b"](" + b"".join(integer(int(v)) for v in labels) + b"e"
    return (
        b"\x80\x02}(" + string(b"data") + array + string(b"labels") + label_list
        + string(b"batch_label") + string(b"batch") + b"u."
    )


def write_batches(folder, seed=0, py2=False):
    rng = np.random.RandomState(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.randint(0, 256, size=(PER_BATCH, 3072)).astype(np.uint8)
        labels = rng.randint(0, 10, size=PER_BATCH).tolist()
        with open(folder / name, "wb") as f:
            if py2:
                f.write(py2_pickle(data, labels))
            else:
                pickle.dump({b"batch_label": name.encode(), b"data": data, b"labels": labels}, f, protocol=2)
        out[name] = (data, labels)
    return out


@pytest.mark.parametrize("py2", [False, True])
def test_load_train_and_test(tmp_path, py2):
    written = write_batches(tmp_path, py2=py2)
    train = load_cifar10(tmp_path, train=True)
    test = load_cifar10(tmp_path, train=False)
    x, y = train.tensors
    assert x.shape == (5 * PER_BATCH, 3, 32, 32) and x.dtype == torch.float32
    assert y.dtype == torch.int64
    assert y[:PER_BATCH].tolist() == written["data_batch_1"][1]
    assert len(test) == PER_BATCH
    # rows are R, G, B planes; check normalisation of one pixel per channel
    raw = written["data_batch_2"][0][1]  # second image of the second batch
    for c in range(3):
        expected = (raw[c * 1024 + 5 * 32 + 7] / 255.0 - CIFAR10_MEAN[c]) / CIFAR10_STD[c]
        assert float(x[PER_BATCH + 1, c, 5, 7]) == pytest.approx(expected, abs=1e-5)


def test_subfolder_and_loaders(tmp_path):
    write_batches(tmp_path / "cifar-10-batches-py")
    train, test = cifar10_loaders(tmp_path, batch_size=8, seed=0, augment=True)
    x, y = next(iter(train))
    assert x.shape == (8, 3, 32, 32) and y.shape == (8,)
    assert isinstance(train.dataset, RandomCropFlip)
    assert not isinstance(test.dataset, RandomCropFlip)


def test_augmentation_keeps_shape_and_repeats_with_seed(tmp_path):
    write_batches(tmp_path)

    def epoch(seed):
        train, _ = cifar10_loaders(tmp_path, batch_size=8, seed=seed)
        return torch.cat([x for x, _ in train])

    a, b, c = epoch(3), epoch(3), epoch(4)
    assert a.shape == (5 * PER_BATCH, 3, 32, 32)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_augmentation_repeats_with_workers(tmp_path):
    write_batches(tmp_path)

    def two_epochs():
        train, _ = cifar10_loaders(tmp_path, batch_size=4, seed=1, num_workers=2)
        return [torch.cat([x for x, _ in train]) for _ in range(2)]

    a, b = two_epochs(), two_epochs()
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], a[1])  # fresh crops every epoch


def test_crop_and_flip_are_shifts_of_the_image():
    image = torch.arange(2 * 6 * 6, dtype=torch.float32).reshape(1, 2, 6, 6) + 1.0
    ds = RandomCropFlip(torch.utils.data.TensorDataset(image, torch.tensor([0])), padding=2, seed=0)
    padded = torch.nn.functional.pad(image[0], (2, 2, 2, 2))
    seen_flip = seen_plain = False
    for _ in range(40):
        out, _ = ds[0]
        assert out.shape == (2, 6, 6)
        windows = [padded[:, i : i + 6, j : j + 6] for i in range(5) for j in range(5)]
        if any(torch.equal(out, w) for w in windows):
            seen_plain = True
        elif any(torch.equal(out, w.flip(-1)) for w in windows):
            seen_flip = True
        else:
            raise AssertionError("output is not a (flipped) window of the padded image")
    assert seen_flip and seen_plain
    # no padding, no flip: identity
    ident = RandomCropFlip(torch.utils.data.TensorDataset(image, torch.tensor([0])), padding=0, flip=False)
    assert torch.equal(ident[0][0], image[0])


def test_augment_off_gives_plain_dataset(tmp_path):
    write_batches(tmp_path)
    train, _ = cifar10_loaders(tmp_path, batch_size=4, augment=False)
    assert isinstance(train.dataset, torch.utils.data.TensorDataset)


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_cifar10(tmp_path / "nope")
    msg = str(err.value)
    assert "\n" not in msg and "nope" in msg and "data_batch_1" in msg and "test_batch" not in msg
    write_batches(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        load_cifar10(tmp_path)
    (tmp_path / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match="test_batch"):
        load_cifar10(tmp_path, train=False)


def test_malformed_batches(tmp_path):
    write_batches(tmp_path)
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(ValueError, match="test_batch.*3072"):
        load_cifar10(tmp_path, train=False)
    # a pickle that would call an arbitrary function is refused, not executed
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": print, b"labels": []}, f)
    with pytest.raises(ValueError, match="test_batch.*not allowed"):
        load_cifar10(tmp_path, train=False)
