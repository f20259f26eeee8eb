"""Helpers shared by every op's Python wrapper: argument checks with clear messages."""

from __future__ import annotations

import torch


def check_floating(name: str, x: torch.Tensor, op: str) -> None:
    """Raises ``TypeError`` unless ``x`` is a floating-point tensor."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{op}: {name} must be a floating-point tensor, got dtype {x.dtype}")


def check_same(op: str, names: tuple[str, str], x: torch.Tensor, y: torch.Tensor) -> None:
    """Raises ``ValueError`` unless ``x`` and ``y`` share shape, dtype and device."""
    a, b = names
    if x.shape != y.shape:
        raise ValueError(f"{op}: {a} and {b} must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.dtype != y.dtype:
        raise TypeError(f"{op}: {a} and {b} must have the same dtype, got {x.dtype} and {y.dtype}")
    if x.device != y.device:
        raise ValueError(f"{op}: {a} and {b} must be on the same device, got {x.device} and {y.device}")
