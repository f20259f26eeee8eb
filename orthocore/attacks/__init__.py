"""Attacks on [0, 1] images, L∞ and L2, untargeted and targeted, many ε in one batched
run: the gradient attacks FGSM, I-FGSM, PGD, MI-FGSM, DI²-FGSM, and the query-based
Square Attack (forward passes only).

Each attack has a class form (``PGD(model, eps=...)(images, labels)``) and a function
form (``pgd(model, images, labels, eps=...)``). A list of ε returns
:math:`(E, B, C, H, W)`. The gradient attacks share one loop
(:mod:`orthocore.attacks._loop`) and one fused op (:func:`orthocore.ops.attack_step`);
Square is its own random search (:mod:`orthocore.attacks.square`).
"""

from orthocore.attacks.base import Attack
from orthocore.attacks.difgsm import DIFGSM, difgsm
from orthocore.attacks.fgsm import FGSM, fgsm
from orthocore.attacks.ifgsm import IFGSM, ifgsm
from orthocore.attacks.mifgsm import MIFGSM, mifgsm
from orthocore.attacks.pgd import PGD, pgd
from orthocore.attacks.square import Square, square

# The one list of attack names: every config, CLI flag and evaluation takes its names from here.
ATTACKS: dict[str, type[Attack]] = {cls.name: cls for cls in (FGSM, IFGSM, PGD, MIFGSM, DIFGSM, Square)}
# The paper's four attacks (Figs. 5/6, Table III): the default of every evaluation.
PAPER_ATTACKS: tuple[str, ...] = ("fgsm", "ifgsm", "pgd", "mifgsm")


def attack_names(names) -> tuple[str, ...]:
    """``names`` as a tuple after checking that it is a non-empty list of keys of :data:`ATTACKS`.

    Raises:
        ValueError: an empty list or an unknown name (naming the known ones).

    Examples:
        >>> attack_names(["fgsm", "pgd"])
        ('fgsm', 'pgd')
    """
    if isinstance(names, str) or not names:
        raise ValueError(f"attacks must name at least one attack from {', '.join(ATTACKS)}; got {names!r}")
    for name in names:
        if name not in ATTACKS:
            raise ValueError(f"attacks: unknown attack {name!r}; expected one of {', '.join(ATTACKS)}")
    return tuple(names)


def make_attack(name: str, model, eps, **options) -> Attack:
    """The attack called ``name`` (one of :data:`ATTACKS`) bound to ``model``."""
    (name,) = attack_names([name])
    return ATTACKS[name](model, eps, **options)


__all__ = [
    "ATTACKS", "DIFGSM", "FGSM", "IFGSM", "MIFGSM", "PAPER_ATTACKS", "PGD", "Attack", "Square",
    "attack_names", "difgsm", "fgsm", "ifgsm", "make_attack", "mifgsm", "pgd", "square",
]  # fmt: skip
