"""What a run records beside its checkpoints: the JSON-lines metrics and ``run.json``
(full configuration, seed, library versions, device)."""

from __future__ import annotations

import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from orthocore._io import atomic_write_json, atomic_write_text


def _installed(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""


def versions() -> dict[str, str]:
    """Versions of Python and the libraries a result depends on."""
    import orthocore

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "orthocore": orthocore.__version__,
        "torch": str(torch.__version__),
        "torchvision": _installed("torchvision"),
        "numpy": np.__version__,
        "cuda": torch.version.cuda or "",
    }


def write_run_record(path: str | os.PathLike, config: dict, device: str) -> None:
    """Writes ``run.json``: the configuration (seed included), versions and device."""
    atomic_write_json(path, {"config": config, "seed": config["seed"], "versions": versions(), "device": device})


class MetricsLog:
    """An append-only JSON-lines file, one object per line (one per epoch).

    Args:
        path: the ``.jsonl`` file.
        keep_until_epoch: on resume, the epoch of the checkpoint: lines of later epochs
            (written by the interrupted run after its last checkpoint) are dropped.
    """

    def __init__(self, path: str | os.PathLike, keep_until_epoch: int | None = None) -> None:
        self.path = Path(path)
        if keep_until_epoch is None:
            atomic_write_text(self.path, "")
        elif self.path.exists():
            kept = [line for line in self.read() if line["epoch"] <= keep_until_epoch]
            atomic_write_text(self.path, "".join(json.dumps(line) + "\n" for line in kept))

    def append(self, record: dict) -> None:
        with open(self.path, "a") as file:
            file.write(json.dumps(record) + "\n")
            file.flush()

    def read(self) -> list[dict]:
        lines = []
        for line in self.path.read_text().splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:  # a line cut short by a kill
                break
        return lines
