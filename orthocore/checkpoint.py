"""Model checkpoints: one file that rebuilds the architecture and its weights.

A checkpoint is a plain dict of tensors, strings and numbers, written atomically and
read back with ``torch.load(weights_only=True)`` (no code runs on load)::

    {"format": "orthocore.model/1", "arch": "resnet20", "num_classes": 10,
     "state_dict": {...}, "extra": {...}}

Training-state files (optimizer, RNG) are separate: see :mod:`orthocore.train.state`.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from orthocore import models
from orthocore._io import atomic_torch_save

FORMAT = "orthocore.model/1"


def save_checkpoint(
    path: str | os.PathLike, model: nn.Module, *, arch: str, num_classes: int, extra: dict | None = None
) -> None:
    """Writes ``model``'s weights with what is needed to rebuild it, atomically.

    Args:
        path: destination file; its folder is created when missing.
        model: a model built by ``orthocore.models.create(arch, num_classes)``.
        arch: the registry name of the architecture.
        num_classes: its number of output logits.
        extra: metadata (config, metrics, versions) made of dicts, lists, strings,
            numbers, booleans, None and tensors, so that ``weights_only`` loading accepts it.

    Raises:
        ValueError: unknown ``arch``.
    """
    models.spec(arch)
    state = {
        "format": FORMAT,
        "arch": arch,
        "num_classes": int(num_classes),
        "state_dict": {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()},
        "extra": dict(extra or {}),
    }
    atomic_torch_save(state, path)


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """The checkpoint dict of ``path``, checked, loaded with ``weights_only=True``.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not an orthocore model checkpoint.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint: no file at {str(path)!r}")
    state = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"checkpoint: {str(path)!r} is not an orthocore model checkpoint (format {FORMAT})")
    return state


def load_model(path: str | os.PathLike, map_location: Any = "cpu") -> nn.Module:
    """Rebuilds the model saved by :func:`save_checkpoint`, in eval mode.

    Args:
        path: a checkpoint file.
        map_location: where to put the weights (``torch.load``'s argument).

    Returns:
        The model, weights loaded, in eval mode.
    """
    state = read_checkpoint(path, map_location)
    model = models.create(state["arch"], state["num_classes"])
    model.load_state_dict(state["state_dict"])
    if isinstance(map_location, (str, torch.device)):
        model.to(map_location)
    return model.eval()
