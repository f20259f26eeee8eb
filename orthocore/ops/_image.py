"""Checks shared by the image ops (``jpeg``, ``bit_depth``, and the other defenses):
a batch of images :math:`(B, C, H, W)` with finite values in ``[0, 1]``."""

from __future__ import annotations

import torch

from orthocore.ops._common import check_floating


def check_image_batch(op: str, x: torch.Tensor, channels: tuple[int, ...] | None = None) -> None:
    """Raises unless ``x`` is a floating :math:`(B, C, H, W)` tensor (shape checks only).

    Args:
        op: the op's name, used in messages.
        x: the tensor to check.
        channels: the channel counts allowed, or ``None`` for any.
    """
    check_floating("x", x, op)
    if x.dim() != 4:
        raise ValueError(f"{op}: x must be a batch of images (B, C, H, W), got shape {tuple(x.shape)}")
    if channels is not None and x.shape[1] not in channels:
        allowed = " or ".join(str(c) for c in channels)
        raise ValueError(f"{op}: x must have {allowed} channels, got {x.shape[1]} (shape {tuple(x.shape)})")


def check_unit_range(op: str, x: torch.Tensor) -> None:
    """Raises ``ValueError`` if ``x`` holds NaN or values outside ``[0, 1]`` (one pass, one sync)."""
    if x.numel() == 0:
        return
    low, high = (float(v) for v in torch.aminmax(x))  # one pass; NaN propagates into both
    if not (low >= 0 and high <= 1):
        what = "NaN" if low != low else f"values in [{low:.4g}, {high:.4g}]"
        raise ValueError(f"{op}: x must hold images in [0, 1], got {what}")


def check_int_in(op: str, name: str, value: int, low: int, high: int) -> None:
    """Raises unless ``value`` is an int (not a bool) in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{op}: {name} must be an int in {low}..{high}, got {type(value).__name__} {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{op}: {name} must be in {low}..{high}, got {value}")


def divide_exactly(x: torch.Tensor, divisor: float) -> torch.Tensor:
    """``x / divisor`` correctly rounded on every device, in the dtype of ``x``.

    PyTorch's CUDA kernels divide by a Python number by multiplying with its reciprocal,
    up to one ulp off the true quotient; the compiled kernels divide, so the references
    that must match them bit for bit divide by a tensor on ``x``'s device instead.
    """
    return x / torch.tensor(divisor, dtype=x.dtype, device=x.device)
