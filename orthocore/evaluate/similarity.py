"""Tables I/II of the paper: a model's accuracy and how similar its input gradients are
to a reference's (δ of Eq. 1, mean ± std, signed and absolute), one row per model.
``orthocore similarity`` prints a row, the study writes one per model."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from orthocore import gradients
from orthocore.metrics import accuracy


@dataclasses.dataclass(frozen=True)
class SimilarityRow:
    """One row of Tables I/II.

    Attributes:
        accuracy: the model's accuracy (%) on the data.
        delta: δ to the reference (:class:`orthocore.gradients.Similarity`), or None for
            the reference's own row.
    """

    accuracy: float
    delta: gradients.Similarity | None

    def record(self) -> dict:
        """The row as stored in ``results.json``: ``test_accuracy`` and ``delta``
        (``signed_mean``, ``signed_std``, ``abs_mean``, ``abs_std``; left out for the reference)."""
        row = {"test_accuracy": self.accuracy}
        if self.delta is not None:
            d = self.delta
            row["delta"] = {"signed_mean": d.mean, "signed_std": d.std, "abs_mean": d.abs_mean, "abs_std": d.abs_std}
        return row


def similarity_row(model: nn.Module, reference: nn.Module, data, device: torch.device, *, batch_size: int = 256,
                   progress: bool = False) -> SimilarityRow:  # fmt: skip
    """The accuracy of ``model`` on ``data`` and δ of its input gradients to ``reference``'s
    (none when ``model`` is the reference itself).

    Args:
        model, reference: classifiers on [0, 1] images.
        data: a dataset of ``(image, label)``.
        device: where to compute.
        batch_size, progress: as in :func:`orthocore.gradients.deltas`.

    Examples:
        >>> import torch
        >>> from orthocore import data, models
        >>> a, b = models.create("digits_cnn"), models.create("digits_cnn")
        >>> row = similarity_row(b, a, data.load_digits("val"), torch.device("cpu"))
        >>> 0 <= row.accuracy <= 100 and -1 <= row.delta.mean <= 1
        True
    """
    delta = None
    if model is not reference:
        delta = gradients.similarity(reference, model, data, batch_size=batch_size, device=device, progress=progress)
    return SimilarityRow(accuracy(model, data, device), delta)
