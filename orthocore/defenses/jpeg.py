"""JPEG compression as a defense (Dziugaite et al. 2016; Guo et al. 2018): the input is
JPEG-encoded and decoded before the model sees it. Wraps :func:`orthocore.ops.jpeg`,
which equals libjpeg / PIL pixel for pixel."""

from __future__ import annotations

from typing import ClassVar

from orthocore.checks import check_number
from orthocore.defenses.base import Defense
from orthocore.ops import jpeg


class JPEG(Defense):
    """JPEG round trip at a fixed quality (4:2:0 chroma, libjpeg defaults).

    Args:
        quality: libjpeg / PIL quality, 1..100. The paper uses 95, 90, 85 and 80.

    Shape:
        - Input: :math:`(B, C, H, W)` in [0, 1], C = 3 (RGB) or 1 (grayscale).
        - Output: same shape and dtype, 8-bit levels; never requires grad.

    Examples:
        >>> import torch
        >>> JPEG(80)(torch.zeros(1, 3, 4, 4)).abs().max().item()
        0.0
    """

    PAPER_SETTINGS: ClassVar[tuple[int, ...]] = (95, 90, 85, 80)
    TABLE_NAME: ClassVar[str] = "JPEG-Quality"
    SWEPT: ClassVar[str] = "quality"

    def __init__(self, quality: int = 90):
        super().__init__(jpeg, quality=check_number(quality, "quality", low=1, high=100, integer=True,
                                                     where=type(self).__name__))  # fmt: skip
