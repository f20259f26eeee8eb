"""scikit-learn's 8x8 handwritten digits: the embedded default data set (1,797 real images).

The split is fixed: a seeded permutation puts 20 % of the images (359) in the validation
set and the rest (1,438) in the training set, the same on every machine.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch

from orthocore.checks import check_choice
from orthocore.data.tensors import TensorImageDataset

SPLIT_SEED = 0
VAL_FRACTION = 0.2


def load_digits(split: str = "train") -> TensorImageDataset:
    """The digits as :math:`(1, 8, 8)` images in [0, 1] (pixel / 16) with labels 0–9.

    Args:
        split: ``"train"``, ``"val"`` or ``"all"``.

    Returns:
        A :class:`TensorImageDataset` of float images.
    """
    check_choice(split, "split", ("train", "val", "all"))
    pixels, targets = _digits_arrays()
    images = torch.tensor(pixels, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8)
    labels = torch.tensor(targets, dtype=torch.long)
    if split != "all":
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SPLIT_SEED))
        n_val = round(VAL_FRACTION * len(labels))
        keep = order[:n_val] if split == "val" else order[n_val:]
        images, labels = images[keep], labels[keep]
    return TensorImageDataset(images, labels, num_classes=10)


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The pixels :math:`(1797, 8, 8)` (0–16) and labels of scikit-learn's digits, read once
    per process from the file scikit-learn ships (``sklearn.load_digits`` parses the same
    file the same way): importing scikit-learn takes about 1.4 s, which every worker
    process of a study would pay before its first model."""
    spec = importlib.util.find_spec("sklearn")
    shipped = Path(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz") if spec else None
    if shipped is None or not shipped.is_file():  # another layout: scikit-learn's own reader
        from sklearn.datasets import load_digits as sklearn_digits

        bunch = sklearn_digits()
        return bunch.images, bunch.target
    data = np.loadtxt(shipped, delimiter=",")  # (1797, 65): 64 pixels, then the label
    return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)
