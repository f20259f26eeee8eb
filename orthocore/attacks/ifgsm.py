"""I-FGSM / BIM (Kurakin et al., "Adversarial Examples in the Physical World", 2017):
FGSM repeated with a small step, projected back onto the ε-ball after every step.
torchattacks calls it ``BIM``."""

from __future__ import annotations

from orthocore.attacks._loop import LoopSettings
from orthocore.attacks.base import Attack


class IFGSM(Attack):
    """Iterative FGSM from the clean image.

    Args:
        steps: iterations. Default 10.
        step_size: absolute step; default ``ε / steps`` for each ε.
        model, eps (default 8/255), norm, targeted, generator, max_batch: as for every
            attack, :class:`~orthocore.attacks.base.Attack`.

    Examples:
        A targeted attack on a linear model that answers class 0 on grey images, towards class 2:

        >>> import torch
        >>> linear = torch.nn.Linear(4, 3)
        >>> _ = torch.nn.init.zeros_(linear.weight), linear.bias.data.copy_(torch.tensor([21.0, 0.0, 0.0]))
        >>> linear.weight.data[2] = 10.0  # class 2's logit, 10 · the pixel sum, is 20 on grey
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), linear)
        >>> x = torch.full((2, 1, 2, 2), 0.5)
        >>> model(x).argmax(1).tolist()
        [0, 0]
        >>> adv = IFGSM(model, eps=0.05, steps=5, targeted=True)(x, torch.tensor([2, 2]))
        >>> model(adv).argmax(1).tolist(), bool((adv - x).abs().max() <= 0.05 + 1e-7)
        ([2, 2], True)
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
