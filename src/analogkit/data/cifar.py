"""CIFAR-10 from a local folder of the "python version" batches (nothing is downloaded).

CIFAR-10 (Krizhevsky 2009, "Learning Multiple Layers of Features from Tiny Images", University of
Toronto) has 50,000 training and 10,000 test colour images of 32×32 pixels in 10 classes. The
python version holds the files ``data_batch_1`` … ``data_batch_5`` (training) and ``test_batch``,
each a pickled dict with ``b'data'`` (N×3072 uint8, rows are the red, green, then blue 32×32
planes) and ``b'labels'`` (N ints in 0..9). They are searched in ``root`` and then in
``root/cifar-10-batches-py`` (the folder the official archive unpacks to).

The batches are unpickled with a restricted unpickler that only rebuilds numpy arrays, so a
foreign file cannot run code while it is read.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset, get_worker_info

from analogkit.data.digits import check_loader_args, make_loaders

# Standard CIFAR-10 statistics: per-channel (R, G, B) mean and standard deviation of all pixels of
# the 50,000 training images, scaled to [0, 1]. (The also widespread std (0.2023, 0.1994, 0.2010)
# is the average of per-image stds, not the pixel std.)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR10_NUM_CLASSES = 10
CIFAR10_IMAGE_SHAPE = (3, 32, 32)
CIFAR10_SUBFOLDER = "cifar-10-batches-py"
CIFAR10_FILES = {
    True: tuple(f"data_batch_{i}" for i in range(1, 6)),
    False: ("test_batch",),
}

_ALLOWED_GLOBALS = {
    ("_codecs", "encode"),  # how Python 3 protocol-2 pickles store bytes
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that allows plain containers and numpy arrays, nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR-10 batch")


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(data (N, 3072) uint8, labels (N,) int64)`` of one pickled batch; ``ValueError`` naming
    the file if it is not a well-formed batch."""
    try:
        with open(path, "rb") as f:
            obj = _ArrayUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError,
            ValueError) as err:
        raise ValueError(f"{path}: not a CIFAR-10 python batch ({err})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: not a CIFAR-10 python batch (a {type(obj).__name__}, not a dict)")
    data = obj.get(b"data", obj.get("data"))
    labels = obj.get(b"labels", obj.get("labels"))
    if data is None or labels is None:
        raise ValueError(f"{path}: CIFAR-10 batch lacks the keys b'data' and b'labels'")
    data = np.asarray(data)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(
            f"{path}: b'data' must be an N×3072 uint8 array, got {data.dtype.name} of shape {data.shape}"
        )
    if len(labels) != len(data):
        raise ValueError(f"{path}: {len(labels)} labels for {len(data)} images")
    if len(labels) and (labels.min() < 0 or labels.max() >= CIFAR10_NUM_CLASSES):
        raise ValueError(f"{path}: labels must be in 0..9, found {labels.min()}..{labels.max()}")
    return data, labels


def find_cifar10_files(root: str | Path, train: bool = True) -> list[Path]:
    """Paths of the batch files of one split in ``root`` or ``root/cifar-10-batches-py``.

    All files of a split must sit in the same folder. Raises ``FileNotFoundError`` with a one-line
    message naming the folder and the expected file names.
    """
    root = Path(root)
    names = CIFAR10_FILES[bool(train)]
    expected = f"expected {', '.join(names)} in it or in its {CIFAR10_SUBFOLDER} subfolder"
    if not root.is_dir():
        raise FileNotFoundError(f"CIFAR-10: folder {str(root)!r} does not exist; {expected}")
    for folder in (root, root / CIFAR10_SUBFOLDER):
        if all((folder / n).is_file() for n in names):
            return [folder / n for n in names]
    missing = [n for n in names if not (root / n).is_file() and not (root / CIFAR10_SUBFOLDER / n).is_file()]
    what = ", ".join(missing) if missing else "a complete set of batches"
    raise FileNotFoundError(f"CIFAR-10: {what} not found in {str(root)!r}; {expected}")


def load_cifar10(root: str | Path, train: bool = True) -> TensorDataset:
    """CIFAR-10's training (``train=True``) or test split from the python batches under ``root``.

    Returns a ``TensorDataset`` of float32 images (N, 3, 32, 32), scaled to [0, 1] and normalised
    per channel with :data:`CIFAR10_MEAN` and :data:`CIFAR10_STD`, and int64 labels (N,).
    """
    if not isinstance(train, bool):
        raise ValueError(f"load_cifar10: train={train!r} is not allowed; use True or False")
    parts = [_read_batch(p) for p in find_cifar10_files(root, train)]
    data = np.concatenate([d for d, _ in parts])
    labels = np.concatenate([lab for _, lab in parts])
    x = torch.from_numpy(data).reshape(-1, *CIFAR10_IMAGE_SHAPE).float().div_(255.0)
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    x = (x - mean) / std
    return TensorDataset(x.contiguous(), torch.from_numpy(labels))


class RandomCropFlip(Dataset):
    """Training augmentation of an image data set: random crop with zero padding, random h-flip.

    Each image (C, H, W) is padded by ``padding`` pixels of 0 on every side — 0 in the normalised
    space, i.e. the data set's mean colour — and an H×W window is cut at a uniformly random offset;
    with ``flip`` it is then mirrored left–right with probability 1/2 (the augmentation of He et
    al. 2016 for CIFAR-10). Randomness comes from the wrapper's own ``torch.Generator`` seeded with
    ``seed``. Inside a DataLoader worker it is reseeded from ``seed`` and the worker's seed (which a
    loader with a seeded generator derives from that generator each epoch), so workers do not
    repeat each other's draws and a run repeats exactly for a given ``num_workers`` (the random
    stream differs between ``num_workers=0`` and worker processes).
    """

    def __init__(self, dataset: Dataset, padding: int = 4, flip: bool = True, seed: int = 0) -> None:
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ValueError(f"RandomCropFlip: padding={padding!r} is not allowed; use an integer >= 0")
        if not isinstance(flip, bool):
            raise ValueError(f"RandomCropFlip: flip={flip!r} is not allowed; use True or False")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"RandomCropFlip: seed={seed!r} is not allowed; use an integer >= 0")
        self.dataset = dataset
        self.padding = padding
        self.flip = flip
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self._worker_seed: int | None = None

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def _gen(self) -> torch.Generator:
        info = get_worker_info()
        if info is not None and self._worker_seed != info.seed:
            self._worker_seed = info.seed
            self.generator = torch.Generator().manual_seed((self.seed * 1_000_003 + info.seed) % 2**63)
        return self.generator

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        image, label = self.dataset[index]
        gen = self._gen()
        p = self.padding
        if p:
            h, w = image.shape[-2:]
            offsets = torch.randint(0, 2 * p + 1, (2,), generator=gen).tolist()
            padded = F.pad(image, (p, p, p, p))
            image = padded[..., offsets[0] : offsets[0] + h, offsets[1] : offsets[1] + w]
        if self.flip and bool(torch.randint(0, 2, (1,), generator=gen).item()):
            image = image.flip(-1)
        return image.contiguous(), label


def cifar10_loaders(
    root: str | Path,
    batch_size: int = 128,
    seed: int = 0,
    augment: bool = True,
    num_workers: int = 0,
) -> tuple[DataLoader, DataLoader]:
    """``(train_loader, test_loader)`` over :func:`load_cifar10`.

    With ``augment`` the training images go through :class:`RandomCropFlip` (crop 32 with padding
    4, horizontal flip) seeded with ``seed``; the train loader shuffles with its own generator
    seeded with ``seed``. The test split is never augmented.
    """
    check_loader_args("cifar10_loaders", batch_size, seed, num_workers)
    if not isinstance(augment, bool):
        raise ValueError(f"cifar10_loaders: augment={augment!r} is not allowed; use True or False")
    train: Dataset = load_cifar10(root, train=True)
    test = load_cifar10(root, train=False)
    if augment:
        train = RandomCropFlip(train, padding=4, flip=True, seed=int(seed))
    return make_loaders(train, test, batch_size, seed, num_workers)
