"""FGSM (Goodfellow et al., "Explaining and Harnessing Adversarial Examples", ICLR 2015):
one step of size ε along the gradient's sign (L∞), or along the unit-L2 gradient (L2,
"fast gradient method"). Over a list of ε the gradient is computed once."""

from __future__ import annotations

from orthocore.attacks._loop import LoopSettings
from orthocore.attacks.base import Attack


class FGSM(Attack):
    """Fast gradient sign method: ``clip(x + ε·sign(∇ₓL), 0, 1)``.

    Args:
        model: classifier on [0, 1] images.
        eps: radius or list of radii. Default 8/255.
        norm: ``"inf"`` (sign) or ``"2"`` (unit-L2 gradient step).
        targeted: ``labels`` are targets; the step descends their loss.
        generator, max_batch: see :class:`~orthocore.attacks.base.Attack`.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
        >>> adv = FGSM(model, eps=[0.01, 0.03])(torch.rand(5, 3, 2, 2), torch.tensor([0, 1, 2, 0, 1]))
        >>> adv.shape
        torch.Size([2, 5, 3, 2, 2])
    """

    name = "fgsm"

    def __init__(self, model, eps=8 / 255, *, norm="inf", targeted=False, generator=None, max_batch=None):
        settings = LoopSettings(norm=norm, steps=1, step_scale=1.0, targeted=targeted)
        super().__init__(model, eps, settings, generator=generator, max_batch=max_batch)


def fgsm(model, images, labels, eps=8 / 255, **options):
    """Function form of :class:`FGSM`: adversarial images for ``images`` :math:`(B, C, H, W)`
    and ``labels`` :math:`(B,)`; :math:`(E, B, C, H, W)` when ``eps`` is a list."""
    return FGSM(model, eps, **options)(images, labels)
