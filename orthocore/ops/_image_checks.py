"""Argument checks shared by the image ops (images are :math:`(B, C, H, W)` in [0, 1])."""

from __future__ import annotations

import math
import numbers

import torch

from orthocore.ops._common import check_floating


def check_image_batch(x: torch.Tensor, op: str, name: str = "x") -> None:
    """Raises unless ``x`` is a floating :math:`(B, C, H, W)` tensor (no data is read)."""
    check_floating(name, x, op)
    if x.dim() != 4:
        raise ValueError(f"{op}: {name} must be a (B, C, H, W) image batch, got a {x.dim()}-D tensor {tuple(x.shape)}")


def check_image_values(x: torch.Tensor, op: str, name: str = "x") -> None:
    """Raises ``ValueError`` if ``x`` holds NaN/inf or values outside [0, 1] (reads the data once).

    Skipped while ``torch.compile`` traces: values are unknown then, and a data-dependent
    branch would break the graph.
    """
    if x.numel() == 0 or torch.compiler.is_compiling():
        return
    low, high = torch.aminmax(x)
    low, high = float(low), float(high)
    if math.isnan(low) or math.isnan(high) or math.isinf(low) or math.isinf(high):
        raise ValueError(f"{op}: {name} must be finite, got NaN or inf values")
    if low < 0.0 or high > 1.0:
        raise ValueError(f"{op}: {name} must hold values in [0, 1], got values in [{low:.4g}, {high:.4g}]")


def check_positive(value: float, op: str, name: str) -> float:
    """``value`` as a float; raises ``ValueError`` unless it is a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{op}: {name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_count(value: int, op: str, name: str, minimum: int = 1) -> int:
    """``value`` as an int; raises ``ValueError`` unless it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{op}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
