"""DI²-FGSM (Xie et al., "Improving Transferability of Adversarial Examples with Input
Diversity", CVPR 2019): I-FGSM whose gradient is taken through a random resize-and-pad
of the input (probability ``p``); with ``decay > 0`` it is M-DI²-FGSM."""

from __future__ import annotations

from orthocore.attacks._loop import LoopSettings
from orthocore.attacks.base import Attack


class DIFGSM(Attack):
    """Diverse-inputs iterative FGSM.

    Each image is, with probability ``diversity_prob``, shrunk to a random size in
    ``[resize_rate·size, size)`` and zero-padded back at a random offset
    (:mod:`orthocore.attacks.diversity`); the draws are per image and per step.

    Args:
        steps: iterations. Default 10.
        step_size: absolute step; default ``ε / steps`` for each ε.
        diversity_prob: probability p of transforming an image at a step. Default 0.5.
        resize_rate: smallest size as a fraction of the image size. Default 0.9.
        decay: momentum μ; 0 gives DI²-FGSM, 1.0 M-DI²-FGSM. Default 0.
        model, eps (default 8/255), norm, targeted, generator, max_batch: as for every
            attack, :class:`~orthocore.attacks.base.Attack`.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
        >>> attack = DIFGSM(model, eps=0.03, generator=torch.Generator().manual_seed(0))
        >>> attack(torch.rand(2, 3, 16, 16), torch.tensor([0, 2])).shape
        torch.Size([2, 3, 16, 16])
    """

    name = "difgsm"

    def __init__(
        self, model, eps=8 / 255, *, steps=10, step_size=None, diversity_prob=0.5, resize_rate=0.9, decay=0.0,
        norm="inf", targeted=False, generator=None, max_batch=None,
    ):  # fmt: skip
        settings = LoopSettings(
            norm=norm,
            steps=steps,
            step_size=step_size,
            decay=decay if decay != 0 else None,
            diversity_prob=diversity_prob,
            resize_rate=resize_rate,
            targeted=targeted,
        )
        super().__init__(model, eps, settings, generator=generator, max_batch=max_batch)


def difgsm(model, images, labels, eps=8 / 255, **options):
    """Function form of :class:`DIFGSM`."""
    return DIFGSM(model, eps, **options)(images, labels)
