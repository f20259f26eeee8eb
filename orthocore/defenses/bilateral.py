"""Bilateral filtering as a module that can sit in front of a model."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from orthocore.defenses.base import Defense
from orthocore.ops.bilateral import bilateral, check_bilateral_settings

# The paper gives only the window (3, 5, 7, 9 = OpenCV's diameter d). The sigmas are
# those of OpenCV's own bilateralFilter example, cv2.bilateralFilter(img, d, 75, 75):
# sigma_color 75/255 on [0, 1] images (on the L1 distance summed over the channels) and
# sigma_space 75 pixels, so that the window, not the spatial Gaussian, sets the reach.
SIGMA_COLOR = 75 / 255
SIGMA_SPACE = 75.0


class Bilateral(Defense):
    """OpenCV-compatible bilateral filter with reflected borders.

    Args:
        window: odd diameter >= 1 of the circular window (OpenCV's ``d``).
        sigma_color: colour sigma > 0 on the [0, 1] scale (default 75/255).
        sigma_space: spatial sigma > 0 in pixels (default 75).

    Shape:
        - Input: :math:`(B, C, H, W)`, range [0, 1].
        - Output: :math:`(B, C, H, W)`.

    Examples:
        >>> import torch
        >>> from orthocore.defenses import Bilateral
        >>> Bilateral(window=5)(torch.rand(2, 3, 8, 8)).shape
        torch.Size([2, 3, 8, 8])
    """

    PAPER_SETTINGS: ClassVar[tuple[int, ...]] = (3, 5, 7, 9)
    TABLE_NAME: ClassVar[str] = "Bilateral-Window"
    SWEPT: ClassVar[str] = "window"

    def __init__(self, window: int, sigma_color: float = SIGMA_COLOR, sigma_space: float = SIGMA_SPACE):
        check_bilateral_settings(window, sigma_color, sigma_space)
        super().__init__(bilateral, window=int(window), sigma_color=float(sigma_color), sigma_space=float(sigma_space))

    def approximation(self, x: Tensor) -> Tensor:
        """The filter itself, whose op is differentiable: BPDA through it takes the
        bilateral filter's true gradient."""
        return bilateral(x, self.window, self.sigma_color, self.sigma_space)
