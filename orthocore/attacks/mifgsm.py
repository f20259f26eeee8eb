"""MI-FGSM (Dong et al., "Boosting Adversarial Attacks with Momentum", CVPR 2018):
I-FGSM on an accumulated gradient ``g ← μ·g + ∇/mean|∇|`` (the gradient normalised
by its per-image mean absolute value, i.e. its L1 norm over the pixel count)."""

from __future__ import annotations

from orthocore.attacks._loop import LoopSettings
from orthocore.attacks.base import Attack


class MIFGSM(Attack):
    """Momentum iterative FGSM.

    Args:
        steps: iterations. Default 10.
        step_size: absolute step; default ``ε / steps`` for each ε.
        decay: momentum μ. Default 1.0.
        model, eps (default 8/255), norm, targeted, generator, max_batch: as for every
            attack, :class:`~orthocore.attacks.base.Attack` (with ``norm="2"`` the step follows
            the accumulated gradient's unit-L2 direction).

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
        >>> MIFGSM(model, eps=[0.01, 0.02, 0.04])(torch.rand(2, 3, 2, 2), torch.tensor([0, 1])).shape
        torch.Size([3, 2, 3, 2, 2])
    """

    name = "mifgsm"

    def __init__(
        self, model, eps=8 / 255, *, steps=10, step_size=None, decay=1.0, norm="inf", targeted=False,
        generator=None, max_batch=None,
    ):  # fmt: skip
        settings = LoopSettings(norm=norm, steps=steps, step_size=step_size, decay=decay, targeted=targeted)
        super().__init__(model, eps, settings, generator=generator, max_batch=max_batch)


def mifgsm(model, images, labels, eps=8 / 255, **options):
    """Function form of :class:`MIFGSM`."""
    return MIFGSM(model, eps, **options)(images, labels)
