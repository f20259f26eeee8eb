"""Bit-depth reduction as a defense (feature squeezing, Xu et al. 2018): every channel
is quantised to ``2^bits`` evenly spaced levels. Wraps :func:`orthocore.ops.bit_depth`."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from orthocore.checks import check_number
from orthocore.defenses.base import Defense
from orthocore.ops import bit_depth


class BitDepth(Defense):
    """``rint(x·(2^bits−1)) / (2^bits−1)``, exactly as ART's FeatureSqueezing.

    Args:
        bits: bits per channel kept, 1..8. The paper uses 1, 2, 3 and 4.

    Shape:
        - Input: :math:`(B, C, H, W)` in [0, 1].
        - Output: same shape and dtype; never requires grad.

    Examples:
        >>> import torch
        >>> BitDepth(1)(torch.tensor([0.2, 0.7]).view(1, 1, 1, 2)).flatten().tolist()
        [0.0, 1.0]
    """

    PAPER_SETTINGS: ClassVar[tuple[int, ...]] = (1, 2, 3, 4)
    TABLE_NAME: ClassVar[str] = "Bit Reduction - Depth"
    SWEPT: ClassVar[str] = "bits"

    def __init__(self, bits: int = 4):
        super().__init__(bit_depth, bits=check_number(bits, "bits", low=1, high=8, integer=True,
                                                       where=type(self).__name__))  # fmt: skip

    def approximation(self, x: Tensor) -> Tensor:
        """Smooth rounding for BPDA: ``(s − sin(2πs)/(2π)) / L`` with ``s = x·L`` and
        ``L = 2^bits − 1``. It passes through every quantisation level, is monotone, and
        its slope (``1 − cos 2πs``) is 0 at the levels and 2 halfway between them, where
        the rounding jumps: it points the attack at the pixels a small step can flip."""
        levels = float((1 << self.bits) - 1)
        scaled = x * levels
        return (scaled - torch.sin(2 * math.pi * scaled) / (2 * math.pi)) / levels

