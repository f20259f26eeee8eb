"""Argument checks of the attacks, run before any work: each error names the argument
and what was expected."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

NORM_ALIASES = {"inf": "inf", "linf": "inf", "2": "2", "2.0": "2", "l2": "2"}


def norm_name(norm: str | float) -> str:
    """``"inf"`` or ``"2"`` from any accepted spelling (``"linf"``, ``"l2"``, ``inf``, ``2``)."""
    key = str(norm).lower()
    if key not in NORM_ALIASES:
        raise ValueError(f"norm must be one of 'inf', 'linf', '2', 'l2'; got {norm!r}")
    return NORM_ALIASES[key]


def eps_values(eps: float | Sequence[float] | Tensor) -> tuple[tuple[float, ...], bool]:
    """The ε values as floats, and whether a list was given (the result gets an ε axis)."""
    if isinstance(eps, Tensor):
        if eps.dim() > 1:
            raise ValueError(f"eps must be a number or a 1-D list of numbers, got a tensor of shape {tuple(eps.shape)}")
        is_list, values = eps.dim() == 1, eps.reshape(-1).tolist()
    elif isinstance(eps, (int, float)) and not isinstance(eps, bool):
        is_list, values = False, [eps]
    elif isinstance(eps, Sequence) and not isinstance(eps, str):
        is_list, values = True, list(eps)
    else:
        raise TypeError(f"eps must be a number or a list of numbers, got {type(eps).__name__}")
    if not values:
        raise ValueError("eps must not be an empty list")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"eps values must be numbers, got {value!r}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"eps must be finite and >= 0 (a fraction of the [0, 1] range), got {value}")
    return tuple(float(v) for v in values), is_list


def check_number(name: str, value: float, *, low: float = 0.0, high: float = math.inf, integer: bool = False) -> None:
    """Raises unless ``low <= value <= high`` (and an int when ``integer``)."""
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise TypeError(f"{name} must be {kind}, got {value!r}")
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name} must be {kind} in [{low}, {high}], got {value}")


def check_images(images: Tensor) -> None:
    """Images: a non-empty floating :math:`(B, C, H, W)` tensor in [0, 1] without NaN."""
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if not images.is_floating_point():
        raise TypeError(f"images must be a floating-point tensor in [0, 1], got dtype {images.dtype}")
    if images.dim() != 4:
        raise ValueError(f"images must have shape (B, C, H, W), got {tuple(images.shape)}")
    if images.numel() == 0:
        raise ValueError(f"images must not be empty, got shape {tuple(images.shape)}")
    low, high = torch.stack(torch.aminmax(images)).tolist()  # one pass, one device sync; NaN propagates
    if math.isnan(low) or math.isnan(high):
        raise ValueError("images contain NaN")
    if low < 0 or high > 1:
        raise ValueError(f"images must be in [0, 1] (normalise inside the model), got [{low:.4g}, {high:.4g}]")


def check_labels(labels: Tensor, batch: int) -> None:
    """Labels: an integer :math:`(B,)` tensor of non-negative class indices."""
    if not isinstance(labels, Tensor):
        raise TypeError(f"labels must be a torch.Tensor, got {type(labels).__name__}")
    if labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"labels must be an integer tensor of class indices, got dtype {labels.dtype}")
    if labels.shape != (batch,):
        raise ValueError(f"labels must have shape ({batch},) to match images, got {tuple(labels.shape)}")
    if batch and labels.min().item() < 0:
        raise ValueError(f"labels must be class indices >= 0, got {labels.min().item()}")


def check_model(model: nn.Module, images: Tensor) -> None:
    """The model is callable and its parameters live on the images' device and dtype."""
    if not callable(model):
        raise TypeError(f"model must be a callable torch.nn.Module, got {type(model).__name__}")
    parameter = next(iter(model.parameters()), None) if isinstance(model, nn.Module) else None
    if parameter is not None and parameter.device != images.device:
        raise ValueError(f"model is on {parameter.device} but images are on {images.device}")
    if parameter is not None and parameter.is_floating_point() and parameter.dtype != images.dtype:
        raise TypeError(f"model parameters are {parameter.dtype} but images are {images.dtype}")


def check_logits(logits: Tensor, labels: Tensor) -> None:
    """The model's output is :math:`(n, K)` logits and every label is below ``K``."""
    if not isinstance(logits, Tensor) or logits.dim() != 2:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"model must return (B, num_classes) logits, got {shape}")
    classes = logits.shape[1]
    if labels.max().item() >= classes:
        raise ValueError(f"labels must be < the model's {classes} output classes, got label {labels.max().item()}")
