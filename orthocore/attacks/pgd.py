"""PGD (Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks",
ICLR 2018): I-FGSM from a uniformly random point of the ε-ball, with a larger step."""

from __future__ import annotations

from orthocore.attacks._loop import LoopSettings
from orthocore.attacks.base import Attack


class PGD(Attack):
    """Projected gradient descent with a random start.

    The random start is uniform in the L∞ cube (or a uniform radius along a uniform
    direction for L2), drawn once per image and scaled by each ε of a sweep.

    Args:
        steps: iterations. Default 10.
        step_size: absolute step; default ``2.5 · ε / steps`` for each ε.
        random_start: start from a random point of the ball. Default True.
        restarts: runs from up to that many random starts, each later one only on the
            (image, ε) pairs that no earlier run fooled, keeping per pair the run with the
            lowest margin. Default 1.
        stop_when_fooled: freeze each (image, ε) pair at the first iterate that fools
            and stop computing its steps, as success-rate evaluations (autoattack) do;
            the result then always fools where any iterate did. Default False: the last
            iterate, as in Madry et al.
        monotone: attack a list of ε in increasing order, count an image fooled at a
            smaller ε as fooled at the larger ones, and attack every other image at each ε
            from the independent sweep's own starts (a worst-case sweep; see
            :mod:`orthocore.attacks._loop`). Default False: each ε attacked as if alone.
        eot: for a randomized model (a defense drawing a fresh transformation per call),
            average each step's gradient over this many draws (Expectation over
            Transformation; AutoAttack's randomized-model setting is 20). Default 1.
        model, eps (default 8/255), norm, targeted, generator, max_batch: as for every
            attack, :class:`~orthocore.attacks.base.Attack`.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
        >>> x = torch.rand(4, 3, 2, 2)
        >>> attack = PGD(model, eps=0.1, norm="2", generator=torch.Generator().manual_seed(0))
        >>> adv = attack(x, torch.tensor([0, 1, 2, 0]))
        >>> bool((adv - x).flatten(1).norm(dim=1).max() <= 0.1 + 1e-6)
        True
    """

    name = "pgd"

    def __init__(
        self, model, eps=8 / 255, *, steps=10, step_size=None, random_start=True, restarts=1,
        stop_when_fooled=False, eot=1, monotone=False, norm="inf", targeted=False, generator=None,
        max_batch=None,
    ):  # fmt: skip
        settings = LoopSettings(
            norm=norm, steps=steps, step_size=step_size, step_scale=2.5, random_start=random_start, targeted=targeted,
            restarts=restarts, stop_when_fooled=stop_when_fooled, eot=eot,
            monotone=monotone,
        )
        super().__init__(model, eps, settings, generator=generator, max_batch=max_batch)


def pgd(model, images, labels, eps=8 / 255, **options):
    """Function form of :class:`PGD`."""
    return PGD(model, eps, **options)(images, labels)
