"""I-FGSM / BIM (Kurakin et al., "Adversarial Examples in the Physical World", 2017):
FGSM repeated with a small step, projected back onto the ε-ball after every step.
torchattacks calls it ``BIM``."""

from __future__ import annotations

from orthocore.attacks._loop import LoopSettings
from orthocore.attacks.base import Attack


class IFGSM(Attack):
    """Iterative FGSM from the clean image.

    Args:
        model: classifier on [0, 1] images.
        eps: radius or list of radii. Default 8/255.
        steps: iterations. Default 10.
        step_size: absolute step; default ``ε / steps`` for each ε.
        norm: ``"inf"`` or ``"2"``.
        targeted: ``labels`` are targets.
        generator, max_batch: see :class:`~orthocore.attacks.base.Attack`.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
        >>> x = torch.rand(4, 3, 2, 2)
        >>> adv = IFGSM(model, eps=0.05, steps=3)(x, torch.tensor([0, 1, 2, 0]))
        >>> bool((adv - x).abs().max() <= 0.05 + 1e-7)
        True
    """

    name = "ifgsm"

    def __init__(
        self, model, eps=8 / 255, *, steps=10, step_size=None, norm="inf", targeted=False, generator=None,
        max_batch=None,
    ):  # fmt: skip
        settings = LoopSettings(norm=norm, steps=steps, step_size=step_size, step_scale=1.0, targeted=targeted)
        super().__init__(model, eps, settings, generator=generator, max_batch=max_batch)


def ifgsm(model, images, labels, eps=8 / 255, **options):
    """Function form of :class:`IFGSM`."""
    return IFGSM(model, eps, **options)(images, labels)
