"""Model checkpoints: one file that rebuilds the architecture and its weights.

A checkpoint is a plain dict of tensors, strings and numbers, written atomically and
read back with ``torch.load(weights_only=True)`` (no code runs on load)::

    {"format": "orthocore.model/1", "arch": "resnet20", "num_classes": 10,
     "state_dict": {...}, "extra": {...}}

A path ending in ``.safetensors`` holds the same checkpoint as a safetensors file: the
state dict as its tensors and ``format``, ``arch``, ``num_classes`` and ``extra`` (JSON)
as its metadata, readable by any safetensors loader. :func:`save_checkpoint`,
:func:`read_checkpoint` and :func:`load_model` take either; :func:`export_safetensors`
converts.

Training-state files (optimizer, RNG) are separate: see :mod:`orthocore.train.state`.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from typing import Any

import torch
from torch import nn

from orthocore import models
from orthocore._io import atomic_path, atomic_torch_save, seal_file, seal_problem

FORMAT = "orthocore.model/1"


def save_checkpoint(
    path: str | os.PathLike, model: nn.Module, *, arch: str, num_classes: int, extra: dict | None = None,
    seal: bool = False,
) -> None:
    """Writes ``model``'s weights with what is needed to rebuild it, atomically.

    Args:
        path: destination file; its folder is created when missing.
        model: a model built by ``orthocore.models.create(arch, num_classes)``.
        arch: the registry name of the architecture.
        num_classes: its number of output logits.
        extra: metadata (config, metrics, versions) made of dicts, lists, strings,
            numbers, booleans, None and tensors, so that ``weights_only`` loading accepts it
            (no tensors in a ``.safetensors`` file: its metadata is JSON).
        seal: also write its digest beside it (:func:`orthocore._io.seal_file`), for a
            checkpoint that is cached and checked when reused (a trainer's).

    Raises:
        ValueError: unknown ``arch``, or ``extra`` that a ``.safetensors`` file cannot hold.
    """
    models.spec(arch)
    state = {
        "format": FORMAT,
        "arch": arch,
        "num_classes": int(num_classes),
        "state_dict": {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()},
        "extra": dict(extra or {}),
    }
    _write(state, path)
    if seal:
        seal_file(path)


def _is_safetensors(path: str | os.PathLike) -> bool:
    return str(path).endswith(".safetensors")


def _write(state: dict, path: str | os.PathLike) -> None:
    if not _is_safetensors(path):
        atomic_torch_save(state, path)
        return
    from safetensors.torch import save_file

    try:
        extra = json.dumps(state["extra"], sort_keys=True)
    except TypeError as error:
        raise ValueError(f"checkpoint: extra must be JSON-serialisable for a .safetensors file ({error})") from None
    metadata = {
        "format": state["format"], "arch": state["arch"], "num_classes": str(state["num_classes"]), "extra": extra
    }
    tensors = {name: tensor.contiguous() for name, tensor in state["state_dict"].items()}
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=metadata)


def _read_safetensors(path: str | os.PathLike, device: str) -> dict:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device=device) as file:
            metadata = file.metadata() or {}
            state_dict = {name: file.get_tensor(name) for name in file.keys()}
    except SafetensorError as error:
        raise ValueError(f"checkpoint: {str(path)!r} is not a readable safetensors file ({error})") from None
    if metadata.get("format") != FORMAT:
        raise ValueError(f"checkpoint: {str(path)!r} is not an orthocore model checkpoint (format {FORMAT})")
    return {
        "format": FORMAT,
        "arch": metadata["arch"],
        "num_classes": int(metadata["num_classes"]),
        "state_dict": state_dict,
        "extra": json.loads(metadata.get("extra", "{}")),
    }


def export_safetensors(checkpoint: str | os.PathLike, out: str | os.PathLike) -> None:
    """Writes the checkpoint ``checkpoint`` (either format) as the ``.safetensors`` file ``out``.

    Raises:
        ValueError: ``out`` does not end in ``.safetensors``, the checkpoint is unreadable,
            or a weight is NaN or inf.
    """
    if not _is_safetensors(out):
        raise ValueError(f"export: out must end in .safetensors, got {str(out)!r}")
    state = read_checkpoint(checkpoint)
    _check_finite_weights(state, checkpoint)
    _write(state, out)


def _check_finite_weights(state: dict, path: str | os.PathLike) -> None:
    """NaN or inf weights are an error naming the file and the tensor: such a model's
    gradients would read as "δ = 0", "perfectly orthogonal"."""
    for name, tensor in state["state_dict"].items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{str(path)!r}: weight {name!r} holds NaN or inf values; this checkpoint is not a usable model")


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """The checkpoint dict of ``path``, checked: loaded with ``weights_only=True``, or
    from a ``.safetensors`` file (tensors on ``map_location`` when it names a device).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not an orthocore model checkpoint, or its bytes differ
            from those its seal recorded (:func:`orthocore._io.seal_problem`).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint: no file at {str(path)!r}")
    problem = seal_problem(path)
    if problem is not None:
        raise ValueError(f"checkpoint: {str(path)!r} is damaged: {problem}")
    if _is_safetensors(path):
        device = str(map_location) if isinstance(map_location, (str, torch.device)) else "cpu"
        return _read_safetensors(path, device)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
        # torch's message would suggest weights_only=False, which runs the file's code: never do that.
        reason = str(error).splitlines()[0] if str(error) else ""
        detail = f" ({reason[:200]})" if reason and "weights_only" not in reason else ""
        raise ValueError(f"checkpoint: {str(path)!r} is truncated or not a checkpoint{detail}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"checkpoint: {str(path)!r} is not an orthocore model checkpoint (format {FORMAT})")
    return state


def _check_fits(state: dict, path: str | os.PathLike, data) -> None:
    expected = tuple(models.spec(state["arch"]).input_shape)
    shape, classes = tuple(data.input_shape), int(data.num_classes)
    if expected != shape or state["num_classes"] != classes:
        raise ValueError(
            f"{str(path)!r}: the model ({state['arch']}) takes images of shape {expected} and has "
            f"{state['num_classes']} classes, but the data has images of shape {shape} and {classes} classes"
        )


def load_model(path: str | os.PathLike, map_location: Any = "cpu", *, data=None) -> nn.Module:
    """Rebuilds the model saved by :func:`save_checkpoint`, in eval mode.

    Args:
        path: a checkpoint file.
        map_location: where to put the weights (``torch.load``'s argument).
        data: a dataset the model is to be used on (``input_shape`` and ``num_classes``,
            as :func:`orthocore.data.open_dataset` returns): both must match the model's,
            checked before the weights are loaded into it.

    Returns:
        The model, weights loaded, in eval mode.

    Raises:
        ValueError: naming the file and the tensor, when a weight is NaN or inf; naming
            both shapes, when the model does not fit ``data``.
    """
    state = read_checkpoint(path, map_location)
    if data is not None:
        _check_fits(state, path, data)
    _check_finite_weights(state, path)
    model = models.create(state["arch"], state["num_classes"])
    model.load_state_dict(state["state_dict"])
    if isinstance(map_location, (str, torch.device)):
        model.to(map_location)
    return model.eval()
