"""Data sets: scikit-learn's digits (the embedded default), CIFAR-10 python batches from a
user folder, and ImageNet-style class folders. Every sample is a float image
:math:`(C, H, W)` in [0, 1] and an integer label."""

from __future__ import annotations

import os
from pathlib import Path

from torch.utils.data import Dataset

from orthocore.data.cifar10 import is_cifar10_folder, load_cifar10
from orthocore.data.digits import load_digits
from orthocore.data.folders import MAX_PIXELS, ImageFolderDataset
from orthocore.data.tensors import TensorImageDataset
from orthocore.data.unpickle import safe_load


def open_dataset(spec: str, split: str = "train", *, augment: bool = False, max_pixels: int = MAX_PIXELS) -> Dataset:
    """Opens a data set from a short description.

    Args:
        spec: ``"digits"``; ``"cifar10:PATH"``; ``"folder:PATH"``; or a bare ``PATH``,
            read as CIFAR-10 when it holds ``data_batch_1`` or ``test_batch`` and as class
            folders otherwise.
        split: ``"train"`` or ``"val"`` (CIFAR-10: its test batch; digits and folders:
            their seeded 80/20 split).
        augment: CIFAR-10 only: random crop and flip on training reads.
        max_pixels: class folders only: the largest image accepted (width × height).

    Returns:
        A dataset with ``num_classes``, ``input_shape`` and ``augmented`` attributes.

    Raises:
        FileNotFoundError, ValueError: the path is missing or not in the expected format.
    """
    if split not in ("train", "val"):
        raise ValueError(f"split: expected 'train' or 'val', got {split!r}")
    kind, _, path = spec.partition(":") if spec.split(":", 1)[0] in ("cifar10", "folder") else ("", "", spec)
    if spec == "digits":
        if augment:
            raise ValueError("augment: the digits data set has no augmentation")
        return load_digits(split)
    if not kind:
        if not Path(path).exists():
            raise FileNotFoundError(f"data: {spec!r} is neither 'digits' nor an existing folder")
        kind = "cifar10" if is_cifar10_folder(path) else "folder"
    if kind == "cifar10":
        return load_cifar10(path, split, augment=augment and split == "train")
    if augment:
        raise ValueError("augment: only CIFAR-10 supports augmentation")
    return ImageFolderDataset(os.path.expanduser(path), split, max_pixels=max_pixels)


__all__ = [
    "ImageFolderDataset",
    "TensorImageDataset",
    "load_cifar10",
    "load_digits",
    "open_dataset",
    "safe_load",
]
