"""Input-transformation defenses as modules that sit in front of a model (Table III).

Each defense is a :class:`Defense` module over one batched op of :mod:`orthocore.ops`,
with the paper's four settings in ``PAPER_SETTINGS``. :func:`defended` puts one in front
of a model; :func:`paper_variants` builds every variant of Table III.

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


def paper_variants() -> dict[str, Defense]:
    """Every defense at every setting of Table III, keyed by the table's row label.

    Examples:
        >>> list(paper_variants())[:2]
        ['JPEG-Quality=95', 'JPEG-Quality=90']
    """
    return {module.label: module for cls in DEFENSES for module in cls.paper_variants()}


__all__ = [
    "DEFENSES",
    "PAPER_SETTINGS",
    "Bilateral",
    "BitDepth",
    "Defended",
    "Defense",
    "JPEG",
    "TVDenoise",
    "defended",
    "paper_variants",
]
