"""The class form shared by every attack: an object holding a model and settings, called
like torchattacks' and Foolbox's attacks: ``attack(images, labels) -> adversarial images``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from orthocore.attacks._loop import LoopSettings, eps_values, run_attack
from orthocore.attacks.ensemble import as_source


class Attack:
    """An attack bound to a model; subclasses fix the settings of one method.

    Args:
        model: maps :math:`(n, C, H, W)` images in [0, 1] to :math:`(n, K)` logits
            (normalisation inside the model); or a list of such models, whose mean
            logits are attacked (:class:`~orthocore.attacks.ensemble.LogitEnsemble`).
        eps: radius, or a list of radii for a sweep (fractions of the [0, 1] range).
        settings: the :class:`~orthocore.attacks._loop.LoopSettings` of the method, which
            hold the two arguments every attack's constructor also takes: ``norm``,
            ``"inf"`` or ``"2"`` (the ball and the step's direction), and ``targeted``
            (``labels`` are targets, whose loss the steps descend).
        generator: CPU generator for the random draws (default: torch's global one).
        max_batch: most images per forward pass; default: what fits in free memory.
    """

    name = "attack"
    uses_gradients = True  # False for query-based attacks, which never call backward

    def __init__(
        self,
        model: nn.Module,
        eps: float | Sequence[float] | Tensor,
        settings: LoopSettings,
        *,
        generator: torch.Generator | None = None,
        max_batch: int | None = None,
    ):
        eps_values(eps)  # fail at construction, not at the first call
        self.model = as_source(model)
        self.eps = eps
        self.settings = settings
        self.generator = generator
        self.max_batch = max_batch

    def __call__(self, images: Tensor, labels: Tensor) -> Tensor:
        """Adversarial images: :math:`(B, C, H, W)`, or :math:`(E, B, C, H, W)` for a list of ε.

        Args:
            images: :math:`(B, C, H, W)` clean images, range [0, 1].
            labels: :math:`(B,)` true labels, or target labels when ``targeted``.
        """
        return run_attack(
            self.model, images, labels, self.eps, self.settings, generator=self.generator, max_batch=self.max_batch
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(eps={self.eps}, {self.settings})"
