"""Data sets: scikit-learn's digits (the embedded default), Fashion-MNIST (and any data in
MNIST's IDX files), CIFAR-10 python batches from a user folder, and ImageNet-style class
folders. Every sample is a float image :math:`(C, H, W)` in [0, 1] and an integer label."""

from __future__ import annotations

import os
from pathlib import Path

from torch.utils.data import Dataset

from orthocore.checks import check_choice
from orthocore.data.cifar10 import is_cifar10_folder, load_cifar10
from orthocore.data.digits import load_digits
from orthocore.data.folders import MAX_PIXELS, ImageFolderDataset
from orthocore.data.mnist import load_idx_folder
from orthocore.data.tensors import TensorImageDataset
from orthocore.data.unpickle import safe_load

IDX_KINDS = ("fashion-mnist", "mnist")
SPLITS = ("train", "val", "test")


def open_dataset(spec: str, split: str = "train", *, augment: bool = False, max_pixels: int = MAX_PIXELS) -> Dataset:
    """Opens a data set from a short description.

    Args:
        spec: ``"digits"``; ``"fashion-mnist"`` (found where
            :mod:`orthocore.data.mnist` says), ``"fashion-mnist:PATH"`` or
            ``"mnist:PATH"`` (a folder of the four IDX files); ``"cifar10:PATH"``;
            ``"folder:PATH"``; or a bare ``PATH``, read as CIFAR-10 when it holds
            ``data_batch_1`` or ``test_batch`` and as class folders otherwise.
        split: ``"train"``, ``"val"`` (what the stopping rule validates on) or
            ``"test"`` (what attacks and tables use). IDX sets: 54,000 / 6,000 of the
            training files and the test files. CIFAR-10: ``val`` and ``test`` are both
            its test batch, as in the paper. Digits and folders have no test set of
            their own: ``val`` and ``test`` are both their seeded 20 % split.
        augment: CIFAR-10 only: random crop and flip on training reads.
        max_pixels: class folders only: the largest image accepted (width × height).

    Returns:
        A dataset with ``num_classes``, ``input_shape`` and ``augmented`` attributes.

    Raises:
        FileNotFoundError, ValueError: the path is missing or not in the expected format.
    """
    check_choice(split, "split", SPLITS)
    kinds = ("cifar10", "folder", *IDX_KINDS)
    kind, _, path = spec.partition(":") if spec.split(":", 1)[0] in kinds else ("", "", spec)
    if spec in ("digits", *IDX_KINDS) or kind in IDX_KINDS:
        if augment:
            raise ValueError(f"augment: the {kind or spec} data set has no augmentation")
        if spec == "digits":
            return load_digits("val" if split == "test" else split)
        return load_idx_folder(kind or spec, path or None, split)
    if not kind:
        if not Path(path).exists():
            raise FileNotFoundError(f"data: {spec!r} is neither 'digits', 'fashion-mnist' nor an existing folder")
        kind = "cifar10" if is_cifar10_folder(path) else "folder"
    if kind == "cifar10":
        return load_cifar10(path, split, augment=augment and split == "train")
    if augment:
        raise ValueError("augment: only CIFAR-10 supports augmentation")
    return ImageFolderDataset(os.path.expanduser(path), "val" if split == "test" else split, max_pixels=max_pixels)


__all__ = [
    "ImageFolderDataset",
    "TensorImageDataset",
    "load_cifar10",
    "load_digits",
    "load_idx_folder",
    "open_dataset",
    "safe_load",
]
