"""CIFAR-10 from a user folder in the standard "python batches" format.

The folder is the extracted ``cifar-10-python.tar.gz``: ``data_batch_1`` … ``data_batch_5``
and ``test_batch``, each a pickled dict with ``b"data"`` (uint8 :math:`(N, 3072)`, the
red, green and blue planes of 32x32 images) and ``b"labels"`` (N ints in 0–9). The files
are read with the restricted unpickler of :mod:`orthocore.data.unpickle`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from orthocore.checks import check_choice
from orthocore.data.tensors import TensorImageDataset
from orthocore.data.unpickle import safe_load

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = safe_load(path)
    expected = f"{path}: expected a CIFAR-10 python batch (a dict with b'data' uint8 (N, 3072) and b'labels')"
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(expected)
    data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.shape != data.shape[:1]:
        raise ValueError(f"{expected}; got data {data.dtype} {data.shape}, labels {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{expected}; labels outside 0-9")
    return data, labels


def is_cifar10_folder(root: str | os.PathLike) -> bool:
    """Whether ``root`` looks like an extracted CIFAR-10 python folder."""
    return (Path(root) / TRAIN_FILES[0]).is_file() or (Path(root) / TEST_FILES[0]).is_file()


def load_cifar10(root: str | os.PathLike, split: str = "train", augment: bool = False) -> TensorImageDataset:
    """CIFAR-10 images :math:`(3, 32, 32)` in [0, 1] with labels 0–9.

    Args:
        root: the folder holding ``data_batch_1`` … ``data_batch_5`` and ``test_batch``.
        split: ``"train"`` (the 50,000 training images) or ``"val"`` / ``"test"`` (the
            10,000 test images, the paper's validation set).
        augment: random crop (padding 4) and horizontal flip on every read.

    Raises:
        FileNotFoundError: ``root`` or a batch file of the split is missing.
        ValueError: a batch file is not a CIFAR-10 batch.
        pickle.UnpicklingError: a batch file tries to build anything but plain data.
    """
    check_choice(split, "split", ("train", "val", "test"))
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"CIFAR-10 folder {str(root)!r} does not exist (expected the extracted cifar-10-batches-py)")
    names = TRAIN_FILES if split == "train" else TEST_FILES
    missing = [name for name in names if not (root / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10 folder {str(root)!r} lacks {', '.join(missing)} (expected data_batch_1..5 and test_batch)"
        )
    batches = [_read_batch(root / name) for name in names]
    data = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    images = torch.from_numpy(data).view(-1, 3, 32, 32)  # (N, 3, 32, 32) uint8
    return TensorImageDataset(images, torch.from_numpy(labels.astype(np.int64)), num_classes=10, augment=augment)
