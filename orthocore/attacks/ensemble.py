"""Ensemble sources (Liu et al., "Delving into Transferable Adversarial Examples and
Black-box Attacks", ICLR 2017): an attack given several models attacks the mean of their
logits, as TRS's and DVERGE's baseline ensembles do."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from orthocore.checks import check_model


class LogitEnsemble(nn.Module):
    """The mean of its members' logits.

    Args:
        members: classifiers of the same images to the same classes.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> a, b = nn.Linear(2, 3), nn.Linear(2, 3)
        >>> x = torch.rand(4, 2)
        >>> torch.allclose(LogitEnsemble([a, b])(x), (a(x) + b(x)) / 2)
        True
    """

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: Tensor) -> Tensor:
        """:math:`(B, K)` mean logits of the members on :math:`(B, ...)` inputs."""
        return torch.stack([member(x) for member in self.members]).mean(0)


def as_source(model: nn.Module | Sequence[nn.Module]) -> nn.Module:
    """``model`` itself, or the :class:`LogitEnsemble` of a list or tuple of models."""
    if isinstance(model, (list, tuple)):
        if not model:
            raise ValueError("model: an ensemble needs at least one model, got an empty list")
        for index, member in enumerate(model):
            check_model(member, f"ensemble member {index}", module=True, where="model")
        return model[0] if len(model) == 1 else LogitEnsemble(model)
    return model
