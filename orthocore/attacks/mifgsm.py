"""MI-FGSM (Dong et al., "Boosting Adversarial Attacks with Momentum", CVPR 2018):
I-FGSM on an accumulated gradient ``g ← μ·g + ∇/mean|∇|`` (the gradient normalised
by its per-image mean absolute value, i.e. its L1 norm over the pixel count)."""

from __future__ import annotations

from orthocore.attacks._loop import LoopSettings
from orthocore.attacks.base import Attack


class MIFGSM(Attack):
    """Momentum iterative FGSM.

    Args:
        model: classifier on [0, 1] images.
        eps: radius or list of radii. Default 8/255.
        steps: iterations. Default 10.
        step_size: absolute step; default ``ε / steps`` for each ε.
        decay: momentum μ. Default 1.0.
        norm: ``"inf"`` or ``"2"`` (the step follows the accumulated gradient's sign or
            unit-L2 direction).
        targeted: ``labels`` are targets.
        generator, max_batch: see :class:`~orthocore.attacks.base.Attack`.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
        >>> MIFGSM(model, eps=[0.01, 0.02, 0.04])(torch.rand(2, 3, 2, 2), torch.tensor([0, 1])).shape
        torch.Size([3, 2, 3, 2, 2])
    """

    name = "mifgsm"

    def __init__(
        self,
        model,
        eps=8 / 255,
        *,
        steps=10,
        step_size=None,
        decay=1.0,
        norm="inf",
        targeted=False,
        generator=None,
        max_batch=None,
    ):
        settings = LoopSettings(norm=norm, steps=steps, step_size=step_size, decay=decay, targeted=targeted)
        super().__init__(model, eps, settings, generator=generator, max_batch=max_batch)


def mifgsm(model, images, labels, eps=8 / 255, **options):
    """Function form of :class:`MIFGSM`."""
    return MIFGSM(model, eps, **options)(images, labels)
