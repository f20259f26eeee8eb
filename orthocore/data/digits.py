"""scikit-learn's 8x8 handwritten digits: the embedded default data set (1,797 real images).

The split is fixed: a seeded permutation puts 20 % of the images (359) in the validation
set and the rest (1,438) in the training set, the same on every machine.
"""

from __future__ import annotations

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
    from sklearn.datasets import load_digits as sklearn_digits

    check_choice(split, "split", ("train", "val", "all"))
    bunch = sklearn_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8)
    labels = torch.tensor(bunch.target, dtype=torch.long)
    if split != "all":
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SPLIT_SEED))
        n_val = round(VAL_FRACTION * len(labels))
        keep = order[:n_val] if split == "val" else order[n_val:]
        images, labels = images[keep], labels[keep]
    return TensorImageDataset(images, labels, num_classes=10)
