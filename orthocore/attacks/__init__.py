"""Gradient attacks on [0, 1] images, L∞ and L2, untargeted and targeted, many ε in one
batched run: FGSM, I-FGSM, PGD, MI-FGSM, DI²-FGSM.

Each attack has a class form (``PGD(model, eps=...)(images, labels)``) and a function
form (``pgd(model, images, labels, eps=...)``). A list of ε returns
:math:`(E, B, C, H, W)`. All share one loop (:mod:`orthocore.attacks._loop`) and one
fused op (:func:`orthocore.ops.attack_step`).
"""

from orthocore.attacks.base import Attack
from orthocore.attacks.difgsm import DIFGSM, difgsm
from orthocore.attacks.fgsm import FGSM, fgsm
from orthocore.attacks.ifgsm import IFGSM, ifgsm
from orthocore.attacks.mifgsm import MIFGSM, mifgsm
from orthocore.attacks.pgd import PGD, pgd

ATTACKS: dict[str, type[Attack]] = {cls.name: cls for cls in (FGSM, IFGSM, PGD, MIFGSM, DIFGSM)}


def make_attack(name: str, model, eps, **options) -> Attack:
    """The attack called ``name`` (one of :data:`ATTACKS`) bound to ``model``."""
    if name not in ATTACKS:
        raise ValueError(f"attack must be one of {', '.join(ATTACKS)}; got {name!r}")
    return ATTACKS[name](model, eps, **options)


__all__ = [
    "ATTACKS", "DIFGSM", "FGSM", "IFGSM", "MIFGSM", "PGD", "Attack",
    "difgsm", "fgsm", "ifgsm", "make_attack", "mifgsm", "pgd",
]  # fmt: skip
