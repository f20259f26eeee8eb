"""What every input-transformation defense shares: the :class:`Defense` base module (an
op and its settings: the forward, the setting Table III sweeps, the label, the repr) and
the :func:`defended` wrapper that puts a defense in front of a model, optionally with
the straight-through gradient of BPDA (:mod:`orthocore.defenses.bpda`) for an attacker
who knows the defense. A defense checks its settings at construction with
:func:`orthocore.checks.check_number`."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from torch import Tensor, nn

from orthocore.checks import check_choice, check_model
from orthocore.defenses.bpda import straight_through

# How a defended model's gradient passes its defense: None, not at all (a Defense's
# forward runs without gradient, even where its op has one); "identity", straight through (BPDA);
# "approximation", through the defense's differentiable approximation (BPDA), the
# identity's where it has none.
BPDA_MODES = (None, "identity", "approximation")


class Defense(nn.Module):
    """An input transformation of images :math:`(B, C, H, W)` in [0, 1], no parameters:
    one op of :mod:`orthocore.ops` with its settings.

    Subclasses set ``PAPER_SETTINGS`` (the four values of their hyper-parameter in the
    paper's Table III, in the table's order), ``TABLE_NAME`` (the row label's prefix) and
    ``SWEPT`` (that hyper-parameter's name), take it as their first constructor
    argument, check their settings and pass them to ``super().__init__(op, **settings)``
    under the names the op takes: :meth:`forward` is then ``op(x, **settings)`` without
    gradient, and :meth:`setting`, :attr:`label` and the repr follow. A defense with a
    differentiable stand-in for BPDA overrides :meth:`approximation`; a randomized one
    overrides :attr:`randomized` and :meth:`forward`, and draws through
    :mod:`orthocore.draws`.

    Args:
        op: the transformation, ``op(x, **settings)``.
        settings: its settings, checked by the subclass, kept as attributes.
    """

    PAPER_SETTINGS: ClassVar[tuple] = ()
    TABLE_NAME: ClassVar[str] = ""
    SWEPT: ClassVar[str] = ""

    def __init__(self, op: Callable[..., Tensor], **settings) -> None:
        super().__init__()
        self._op, self._settings = op, tuple(settings)
        for name, value in settings.items():
            setattr(self, name, value)

    def settings(self) -> dict:
        """The op's settings by name."""
        return {name: getattr(self, name) for name in self._settings}

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        """The transformed images.

        Args:
            x: :math:`(B, C, H, W)` images in [0, 1].

        Returns:
            :math:`(B, C, H, W)`; never requires grad (see :mod:`orthocore.defenses.bpda`).
        """
        return self._op(x, **self.settings())

    def extra_repr(self) -> str:
        return ", ".join(f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}"
                         for name, value in self.settings().items())  # fmt: skip

    @property
    def randomized(self) -> bool:
        """Whether each call draws a fresh random transformation (EOT applies)."""
        return False

    @property
    def has_approximation(self) -> bool:
        """Whether :meth:`approximation` is more than the identity."""
        return type(self).approximation is not Defense.approximation

    def approximation(self, x: Tensor) -> Tensor:
        """A differentiable function close to :meth:`forward`, whose gradient BPDA's
        ``"approximation"`` mode uses; the identity unless a defense has a better one.

        Args:
            x: :math:`(B, C, H, W)` images in [0, 1].
        """
        return x

    def setting(self):
        """The value of the hyper-parameter that ``PAPER_SETTINGS`` sweeps."""
        return getattr(self, self.SWEPT)

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
        bpda: how the gradient passes the defense (:data:`BPDA_MODES`): None (default)
            as the defense module gives it (a :class:`Defense` gives none); ``"identity"``
            straight through; ``"approximation"``
            through :meth:`Defense.approximation` (the identity for a module that is not
            a :class:`Defense`). The forward pass is the exact defense in every mode.
    """

    def __init__(self, model: nn.Module, defense: nn.Module, bpda: str | None = None):
        super().__init__()
        check_model(model, "model", module=True, where="defended")
        check_model(defense, "defense", module=True, where="defended")
        self.bpda = check_choice(bpda, "bpda", BPDA_MODES, where="defended")
        self.defense = defense
        self.model = model

    @property
    def randomized(self) -> bool:
        """Whether the defense draws a fresh transformation on every call."""
        return bool(getattr(self.defense, "randomized", False))

    def with_bpda(self, bpda: str | None) -> Defended:
        """The same model and defense (shared, not copied) with another gradient mode."""
        return Defended(self.model, self.defense, bpda)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of the model on the defended images.

        Args:
            x: :math:`(B, C, H, W)` images in [0, 1].

        Returns:
            Whatever the model returns on ``defense(x)``.
        """
        if self.bpda is None:
            return self.model(self.defense(x))
        approximation = None  # the identity: straight through
        if self.bpda == "approximation" and getattr(self.defense, "has_approximation", False):
            approximation = self.defense.approximation
        return self.model(straight_through(x, self.defense, approximation))

    def extra_repr(self) -> str:
        return "" if self.bpda is None else f"bpda={self.bpda!r}"


def defended(model: nn.Module, defense: nn.Module, bpda: str | None = None) -> Defended:
    """Puts ``defense`` in front of ``model`` (``bpda``: see :class:`Defended`).

    Examples:
        >>> import torch
        >>> from orthocore.defenses import JPEG, defended
        >>> net = defended(torch.nn.Flatten(), JPEG(90))
        >>> net(torch.full((2, 3, 8, 8), 0.5)).shape
        torch.Size([2, 192])
        >>> x = torch.rand(2, 3, 8, 8, requires_grad=True)
        >>> net = defended(torch.nn.Flatten(), JPEG(90), bpda="identity")
        >>> bool(torch.equal(torch.autograd.grad(net(x).sum(), x)[0], torch.ones_like(x)))
        True
    """
    return Defended(model, defense, bpda)
