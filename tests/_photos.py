"""Real photographs for fidelity tests: scikit-image's sample images, resized and
cropped to the sizes a test asks for (odd ones included)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

skimage_data = pytest.importorskip("skimage.data")
skimage_transform = pytest.importorskip("skimage.transform")

PHOTOS = ("astronaut", "chelsea", "coffee", "camera")


@functools.cache
def photo(name: str, height: int, width: int) -> np.ndarray:
    """``name`` scaled so that its shorter side covers the crop, then centre-cropped.

    Returns:
        float32 array ``(height, width, 3)`` for colour photos, ``(height, width)`` for
        grey ones, with values on the 8-bit grid ``k / 255``.
    """
    image = getattr(skimage_data, name)()
    scale = max(height / image.shape[0], width / image.shape[1])
    size = (max(height, round(image.shape[0] * scale)), max(width, round(image.shape[1] * scale)))
    resized = skimage_transform.resize(image, size, anti_aliasing=True, preserve_range=True)
    top, left = (size[0] - height) // 2, (size[1] - width) // 2
    crop = resized[top : top + height, left : left + width]
    return (np.clip(np.round(crop), 0, 255) / 255).astype(np.float32)
