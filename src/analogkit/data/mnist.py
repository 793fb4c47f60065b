"""MNIST from a local folder of IDX files (nothing is downloaded).

MNIST (LeCun, Bottou, Bengio & Haffner 1998, "Gradient-based learning applied to document
recognition"; files distributed by LeCun, Cortes & Burges) has 60,000 training and 10,000 test
grey-scale images of 28×28 hand-written digits in the IDX format.

Files searched, in this order, in ``root`` and then in ``root/MNIST/raw`` (the layout other tools
leave behind), each plain or gzip-compressed with a ``.gz`` suffix:

* training split: ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte``
* test split: ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from analogkit.data.digits import check_loader_args, make_loaders

# The conventional MNIST normalisation: mean and std of all training pixels scaled to [0, 1].
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
MNIST_NUM_CLASSES = 10
MNIST_IMAGE_SHAPE = (1, 28, 28)

MNIST_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# IDX type codes (third byte of the magic number) → big-endian numpy dtype.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (plain, or gzip if the name ends in ``.gz``) into a numpy array.

    IDX layout: a 4-byte magic number ``0x00 0x00 <type code> <number of dims>``, then one
    big-endian uint32 per dimension, then the data in C order. Type codes: 0x08 uint8, 0x09 int8,
    0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64 (all big-endian). A malformed header or a
    data size that does not match the dimensions raises ``ValueError`` naming the file.
    """
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:  # includes gzip.BadGzipFile
        raise ValueError(f"{path}: cannot read IDX file ({err})") from None
    if len(raw) < 4:
        raise ValueError(f"{path}: not an IDX file (only {len(raw)} bytes; the header needs 4)")
    magic = int.from_bytes(raw[:4], "big")
    code, ndim = raw[2], raw[3]
    if raw[0] != 0 or raw[1] != 0 or code not in _IDX_DTYPES or ndim == 0:
        raise ValueError(
            f"{path}: wrong IDX magic number 0x{magic:08X}; expected 0x0000TTDD with type code TT "
            f"in {', '.join(f'{c:02X}' for c in _IDX_DTYPES)} and DD >= 1 dimensions"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: IDX header truncated ({len(raw)} bytes; {ndim} dims need {header})")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: IDX data has {len(raw) - header} bytes but dims {dims} of {dtype.name} "
            f"need {expected}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


def _find_file(folders: list[Path], name: str) -> Path | None:
    for folder in folders:
        for candidate in (folder / name, folder / (name + ".gz")):
            if candidate.is_file():
                return candidate
    return None


def find_mnist_files(root: str | Path, train: bool = True) -> tuple[Path, Path]:
    """Paths of the (images, labels) IDX files of one split, searched as the module docstring says.

    Raises ``FileNotFoundError`` with a one-line message naming the folder and the file names.
    """
    root = Path(root)
    names = MNIST_FILES[bool(train)]
    expected = (
        f"expected {names[0]} and {names[1]} (plain or .gz) in it or in its MNIST/raw subfolder"
    )
    if not root.is_dir():
        raise FileNotFoundError(f"MNIST: folder {str(root)!r} does not exist; {expected}")
    folders = [root, root / "MNIST" / "raw"]
    found = [_find_file(folders, n) for n in names]
    missing = [n for n, p in zip(names, found) if p is None]
    if missing:
        raise FileNotFoundError(
            f"MNIST: {', '.join(missing)} not found in {str(root)!r}; {expected}"
        )
    return found[0], found[1]  # type: ignore[return-value]


def load_mnist(root: str | Path, train: bool = True) -> TensorDataset:
    """MNIST's training (``train=True``) or test split from IDX files under ``root``.

    Returns a ``TensorDataset`` of float32 images (N, 1, 28, 28), scaled to [0, 1] and then
    normalised with the conventional mean 0.1307 and std 0.3081, and int64 labels (N,).
    Images must be an IDX uint8 array with 3 dimensions (magic 0x00000803) and labels an IDX
    uint8 vector (magic 0x00000801) of the same length; otherwise ``ValueError`` names the file.
    """
    if not isinstance(train, bool):
        raise ValueError(f"load_mnist: train={train!r} is not allowed; use True or False")
    img_path, lbl_path = find_mnist_files(root, train)
    images = read_idx(img_path)
    labels = read_idx(lbl_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(
            f"{img_path}: wrong magic number for MNIST images; expected 0x00000803 "
            f"(uint8, 3 dims), got {images.dtype.name} with {images.ndim} dims"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(
            f"{lbl_path}: wrong magic number for MNIST labels; expected 0x00000801 "
            f"(uint8, 1 dim), got {labels.dtype.name} with {labels.ndim} dims"
        )
    if len(labels) != len(images):
        raise ValueError(
            f"{lbl_path}: {len(labels)} labels but {img_path.name} has {len(images)} images"
        )
    if len(labels) and labels.max() >= MNIST_NUM_CLASSES:
        raise ValueError(f"{lbl_path}: label {int(labels.max())} is out of range; labels are 0..9")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    x = (x - MNIST_MEAN) / MNIST_STD
    y = torch.from_numpy(labels.astype(np.int64))
    return TensorDataset(x, y)


def mnist_loaders(
    root: str | Path, batch_size: int = 64, seed: int = 0, num_workers: int = 0
) -> tuple[DataLoader, DataLoader]:
    """``(train_loader, test_loader)`` over :func:`load_mnist`; the train loader shuffles with its
    own generator seeded by ``seed``."""
    check_loader_args("mnist_loaders", batch_size, seed, num_workers)
    train = load_mnist(root, train=True)
    test = load_mnist(root, train=False)
    return make_loaders(train, test, batch_size, seed, num_workers)
