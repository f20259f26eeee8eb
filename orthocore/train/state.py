"""Training-state files: everything a killed run needs to continue bit for bit.

``state.pt`` holds the model's and optimizer's state, the epoch, the stopping rule's
history and every random generator's state (Python, NumPy, torch CPU and CUDA). It is a
plain dict written atomically, sealed with its digest (:func:`orthocore._io.seal_file`)
and read with ``torch.load(weights_only=True)``.

A run stopped inside an epoch (SIGTERM) also saves ``partial``: the epoch and the steps
of it done, the epoch's running sums, the sub-batch generator's state and every
process's random state at that step, so that the rest of the epoch is replayed as the
uninterrupted run would have run it (:mod:`orthocore.train.trainer`).
"""

from __future__ import annotations

import os
import pickle
import random
import zipfile
from typing import Any

import numpy as np
import torch

from orthocore._io import atomic_torch_save, seal_problem

FORMAT = "orthocore.train-state/1"


def capture_rng() -> dict[str, Any]:
    """The state of every random generator training draws from."""
    version, internal, gauss = random.getstate()
    name, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, torch.tensor(internal, dtype=torch.int64), gauss],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal.tolist()), gauss))
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(path: str | os.PathLike, *, model, optimizer, epoch: int, history, config: dict,
               reference_digests: list[str], partial: dict | None = None) -> None:  # fmt: skip
    """Writes the training state after ``epoch`` (the last whole epoch; ``partial``: the
    steps done of the next) atomically, with its seal. ``reference_digests`` (of
    ``config``'s reference checkpoints) let a moved or copied run be resumed against
    the same references at their new paths."""
    state = {
        "format": FORMAT,
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "history": [list(item) for item in history],
        "rng": capture_rng(),
        "config": config,
        "reference_digests": list(reference_digests),
    }
    if partial is not None:
        state["partial"] = partial
    atomic_torch_save(state, path, seal=True)


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """Reads a file written by :func:`save_state` (``weights_only=True``), checked
    against its seal.

    Raises:
        ValueError: naming the file, when it is damaged or not a training state.
    """
    problem = seal_problem(path)
    if problem is not None:
        raise ValueError(f"resume: the training state {str(path)!r} is damaged: {problem}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise ValueError(f"resume: {str(path)!r} is truncated or not a training state ({reason})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"resume: {str(path)!r} is not an orthocore training state ({FORMAT})")
    return state
