"""Fashion-MNIST, MNIST and any data set in MNIST's four IDX files.

A folder holds ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each possibly ``.gz``; a
common prefix such as EMNIST's ``emnist-letters-`` is allowed), or torchvision's layout
``ROOT/FashionMNIST/raw/`` (``ROOT/MNIST/raw/`` …) of them. Where they are looked for:

* ``fashion-mnist:PATH``, ``mnist:PATH``: that folder, or torchvision's layout under it;
* ``fashion-mnist`` alone: ``$ORTHOCORE_DATA/fashion-mnist``, then torchvision's layout
  under ``$ORTHOCORE_DATA``, then ``/usr/share/datasets/fashion-mnist`` (Debian's
  ``dataset-fashion-mnist`` package, which ships the release gzipped).

Splits, decided once and stated: ``train`` is 54,000 of the 60,000 training images and
``val`` the other 6,000 (10 %; a permutation seeded with 0, the same on every machine),
which drives the stopping rule; ``test`` is the 10,000 test images, which every attack
and table uses, as the paper does. The files are checked (:mod:`orthocore.data.idx`),
images and labels must agree in number, labels must be classes 0 … K − 1, and
Fashion-MNIST's files are compared with the digests of its one release (a warning names
a file that differs: the data can be right, but the numbers are then not the release's).
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from orthocore.checks import check_choice
from orthocore.data.idx import read_idx
from orthocore.data.tensors import TensorImageDataset

DEBIAN_FOLDER = "/usr/share/datasets/fashion-mnist"
VAL_FRACTION = 0.1  # of the training files: 6,000 of Fashion-MNIST's 60,000
SPLIT_SEED = 0
# SHA-256 of the uncompressed files of Fashion-MNIST's release (zalandoresearch/fashion-mnist).
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}  # fmt: skip
TORCHVISION_NAMES = {"fashion-mnist": "FashionMNIST", "mnist": "MNIST"}


def _find_file(folder: Path, name: str) -> Path | None:
    """``folder``'s file ``[PREFIX]NAME`` or ``[PREFIX]NAME.gz``; None when there is none.

    Raises:
        ValueError: more than one file matches.
    """
    found = sorted(p for suffix in ("", ".gz") for p in folder.glob(f"*{name}{suffix}") if p.is_file())
    if len(found) > 1:
        raise ValueError(f"data: {str(folder)!r} holds {len(found)} files for {name}: "
                         f"{', '.join(p.name for p in found)}; keep one")  # fmt: skip
    return found[0] if found else None


def _holds_idx(folder: Path) -> bool:
    return folder.is_dir() and _find_file(folder, FILES["train"][0]) is not None


def find_folder(kind: str, path: str | None) -> Path:
    """The folder of ``kind``'s (``"fashion-mnist"`` or ``"mnist"``) four files.

    Raises:
        FileNotFoundError: nowhere to be found; the message says how to get them.
    """
    raw = TORCHVISION_NAMES[kind]
    if path is not None:
        root = Path(os.path.expanduser(path))
        candidates = [root, root / raw / "raw"]
    else:
        candidates = []
        if os.environ.get("ORTHOCORE_DATA"):
            data = Path(os.path.expanduser(os.environ["ORTHOCORE_DATA"]))
            candidates += [data / kind, data / raw / "raw"]
        if kind == "fashion-mnist":
            candidates.append(Path(DEBIAN_FOLDER))
    for folder in candidates:
        if _holds_idx(folder):
            return folder
    how = ("install Debian's package (apt-get install dataset-fashion-mnist, into /usr/share/datasets/fashion-mnist)"
           " or, where a network exists, " if kind == "fashion-mnist" else "where a network exists, ")
    raise FileNotFoundError(
        f"data: no {kind} files (train-images-idx3-ubyte[.gz] and the other three) in "
        f"{', '.join(repr(str(c)) for c in candidates)}; {how}download them with "
        f"torchvision.datasets.{raw}(ROOT, download=True) and give {kind}:ROOT"
    )


@functools.lru_cache(maxsize=4)
def _read_part(folder: Path, part: str, kind: str, stamp: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The images :math:`(N, 1, H, W)` uint8 and labels :math:`(N,)` of ``part``
    (``"train"`` or ``"test"``), checked (``stamp``: the files' sizes and times, so that
    a changed file is read again)."""
    arrays = []
    for name, ndim in zip(FILES[part], (3, 1)):
        path = _find_file(folder, name)
        if path is None:
            raise FileNotFoundError(f"data: {str(folder)!r} lacks {name} (or {name}.gz)")
        array = read_idx(path, ndim)
        known = FASHION_MNIST_SHA256.get(name) if kind == "fashion-mnist" else None
        if known and array.sha256 != known:
            warnings.warn(f"data: {path} differs from Fashion-MNIST's release (SHA-256 {array.sha256[:16]}…, "
                          f"expected {known[:16]}…); reading it as it is")  # fmt: skip
        arrays.append((path, array.values))
    (image_path, images), (label_path, labels) = arrays
    if len(images) != len(labels):
        raise ValueError(f"data: {image_path} holds {len(images):,} images but {label_path} {len(labels):,} labels")
    if labels.dtype != np.uint8 or images.dtype != np.uint8:
        raise ValueError(f"data: expected unsigned bytes in {image_path} and {label_path}, got {images.dtype} and "
                         f"{labels.dtype}")  # fmt: skip
    if not len(images):
        raise ValueError(f"data: {image_path} holds no images")
    return images[:, None], labels


def _stamp(folder: Path) -> tuple:
    return tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.iterdir()) if p.is_file())


def load_idx_folder(kind: str, path: str | None, split: str) -> TensorImageDataset:
    """``split`` (``"train"``, ``"val"`` or ``"test"``) of ``kind``'s folder (see the
    module's note), as uint8 images :math:`(N, 1, H, W)` read as floats in [0, 1].

    Raises:
        FileNotFoundError, ValueError: missing or damaged files, named.
    """
    check_choice(split, "split", ("train", "val", "test"))
    folder = find_folder(kind, path)
    train_images, train_labels = _read_part(folder, "train", kind, _stamp(folder))
    test_images, test_labels = _read_part(folder, "test", kind, _stamp(folder))
    if test_images.shape[1:] != train_images.shape[1:]:
        raise ValueError(f"data: the test images of {str(folder)!r} are {test_images.shape[2:]}, the training "
                         f"images {train_images.shape[2:]}")  # fmt: skip
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    if split == "test":
        images, labels = test_images, test_labels
    else:
        order = np.random.default_rng(SPLIT_SEED).permutation(len(train_labels))
        val = round(len(order) * VAL_FRACTION)
        rows = np.sort(order[-val:] if split == "val" else order[:-val])
        images, labels = train_images[rows], train_labels[rows]
    return TensorImageDataset(torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels.astype(np.int64)),
                              num_classes)  # fmt: skip
