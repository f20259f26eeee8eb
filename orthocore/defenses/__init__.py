"""Input-transformation defenses as modules that sit in front of a model (Table III).

Each defense is a :class:`Defense` module over one batched op of :mod:`orthocore.ops`,
with the paper's four settings in ``PAPER_SETTINGS``. :func:`defended` puts one in front
of a model (with BPDA's gradient for an adaptive attacker, :mod:`orthocore.defenses.bpda`);
:func:`paper_variants` builds every variant of Table III, :func:`variants` those and
Guo et al.'s randomized TVM.

A new defense is a module file with a :class:`Defense` subclass, imported below and
added to ``DEFENSES``.
"""

from __future__ import annotations

from orthocore.defenses.base import Defended, Defense, defended
from orthocore.defenses.bilateral import Bilateral
from orthocore.defenses.bit_depth import BitDepth
from orthocore.defenses.jpeg import JPEG
from orthocore.defenses.tv import TVDenoise

# In the order of Table III's rows.
DEFENSES: tuple[type[Defense], ...] = (JPEG, TVDenoise, BitDepth, Bilateral)

# The paper's four settings of each defense (Section IV-D, Table III), by class name:
# JPEG quality 95, 90, 85, 80; TVM weight 3, 5, 7, 9 (Chambolle weights 0.03-0.09 here);
# bit depth 1, 2, 3, 4; bilateral window 3, 5, 7, 9.
PAPER_SETTINGS: dict[str, tuple] = {cls.__name__: cls.PAPER_SETTINGS for cls in DEFENSES}


# Each defense at its strongest setting of Table III (the most quality lost, bits dropped,
# smoothing): the one a defender counting on it would deploy, and so the one an adaptive
# evaluation attacks (a weaker setting of a defense broken here is broken too).
STRONGEST: tuple[str, ...] = ("JPEG-Quality=80", "TVM-Weight=0.09", "Bit Reduction - Depth=1", "Bilateral-Window=9")


def paper_variants() -> dict[str, Defense]:
    """Every defense at every setting of Table III, keyed by the table's row label.

    Examples:
        >>> list(paper_variants())[:2]
        ['JPEG-Quality=95', 'JPEG-Quality=90']
    """
    return {module.label: module for cls in DEFENSES for module in cls.paper_variants()}


def variants() -> dict[str, Defense]:
    """:func:`paper_variants` and the randomized TVM of Guo et al. (2018): Chambolle
    weight 0.03 on a random half of the pixels, a fresh mask per call (label
    ``"TVM-Weight=0.03, keep=0.5"``), keyed by their labels.

    Examples:
        >>> variants()["TVM-Weight=0.03, keep=0.5"].randomized
        True
    """
    guo = TVDenoise(0.03, keep_prob=0.5)
    return {**paper_variants(), guo.label: guo}


__all__ = [
    "DEFENSES",
    "PAPER_SETTINGS",
    "STRONGEST",
    "Bilateral",
    "BitDepth",
    "Defended",
    "Defense",
    "JPEG",
    "TVDenoise",
    "defended",
    "paper_variants",
    "variants",
]
