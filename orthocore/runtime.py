"""Where and with what a run executes: the device it asks for, and the software versions
it records beside its results (``run.json``, checkpoints, ``results.json``, tables)."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

import numpy as np
import torch
from torch import nn

import orthocore
from orthocore.dispatch import backends

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str | torch.device | None, *, model: nn.Module | None = None) -> torch.device:
    """The device a run asked for: ``"auto"`` (CUDA when a GPU is visible, else the CPU),
    ``"cpu"``, ``"cuda"`` or ``"cuda:N"``, a ``torch.device``, or ``None`` for the device
    of ``model``'s parameters (the CPU for a model without any).

    Raises:
        ValueError: an unknown name, or CUDA asked for where no GPU is visible.

    Examples:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if name is None:
        parameter = next(iter(model.parameters()), None) if isinstance(model, nn.Module) else None
        return parameter.device if parameter is not None else torch.device("cpu")
    if isinstance(name, str) and name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"device: expected one of {', '.join(DEVICE_CHOICES)} (or cuda:N), got {name!r}") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device: expected one of {', '.join(DEVICE_CHOICES)} (or cuda:N), got {name!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {name!r} requested but no CUDA device is available")
    return device


def _installed(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""


def versions() -> dict:
    """The versions a result depends on: Python, the platform, orthocore, torch,
    torchvision, numpy, CUDA, and which kernel backends were available."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "orthocore": orthocore.__version__,
        "torch": str(torch.__version__),
        "torchvision": _installed("torchvision"),
        "numpy": np.__version__,
        "cuda": torch.version.cuda or "",
        "backends": {name: status.available for name, status in backends().items()},
    }
