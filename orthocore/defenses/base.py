"""What every input-transformation defense shares: the :class:`Defense` base module and
the :func:`defended` wrapper that puts a defense in front of a model. A defense checks
its settings at construction with :func:`orthocore.checks.check_number`."""

from __future__ import annotations

import abc
from typing import ClassVar

from torch import Tensor, nn


class Defense(nn.Module, metaclass=abc.ABCMeta):
    """An input transformation of images :math:`(B, C, H, W)` in [0, 1], no parameters.

    Subclasses set ``PAPER_SETTINGS`` (the four values of their hyper-parameter in the
    paper's Table III, in the table's order) and ``TABLE_NAME`` (the row label's
    prefix), take that hyper-parameter as their first constructor argument, and
    implement :meth:`forward` and :meth:`setting`.
    """

    PAPER_SETTINGS: ClassVar[tuple] = ()
    TABLE_NAME: ClassVar[str] = ""

    @abc.abstractmethod
    def setting(self):
        """The value of the hyper-parameter that ``PAPER_SETTINGS`` sweeps."""

    @property
    def label(self) -> str:
        """Row label as in Table III, e.g. ``"JPEG-Quality=95"``."""
        return f"{self.TABLE_NAME}={self.setting():g}"

    @classmethod
    def paper_variants(cls) -> list[Defense]:
        """One module per setting of the paper's Table III."""
        return [cls(value) for value in cls.PAPER_SETTINGS]


class Defended(nn.Module):
    """A model behind a defense: ``model(defense(x))``.

    Args:
        model: any classifier taking images :math:`(B, C, H, W)` in [0, 1]
            (normalisation inside the model, as everywhere in orthocore).
        defense: the input transformation applied first.
    """

    def __init__(self, model: nn.Module, defense: nn.Module):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"defended: model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(defense, nn.Module):
            raise TypeError(f"defended: defense must be a torch.nn.Module, got {type(defense).__name__}")
        self.defense = defense
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        """Logits of the model on the defended images.

        Args:
            x: :math:`(B, C, H, W)` images in [0, 1].

        Returns:
            Whatever the model returns on ``defense(x)``.
        """
        return self.model(self.defense(x))


def defended(model: nn.Module, defense: nn.Module) -> Defended:
    """Puts ``defense`` in front of ``model``.

    Examples:
        >>> import torch
        >>> from orthocore.defenses import JPEG, defended
        >>> net = defended(torch.nn.Flatten(), JPEG(90))
        >>> net(torch.full((2, 3, 8, 8), 0.5)).shape
        torch.Size([2, 192])
    """
    return Defended(model, defense)
