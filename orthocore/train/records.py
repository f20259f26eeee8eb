"""What a run records beside its checkpoints: the JSON-lines metrics and ``run.json``
(full configuration, seed, library versions from :func:`orthocore.runtime.versions`, device)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from orthocore._io import atomic_write_json, atomic_write_text
from orthocore.runtime import versions


def write_run_record(path: str | os.PathLike, config: dict, device: str, *, processes: int = 1) -> None:
    """Writes ``run.json``: the configuration (seed included), versions, device and the
    number of processes that trained it (``torchrun``'s world size)."""
    atomic_write_json(path, {"config": config, "seed": config["seed"], "versions": versions(), "device": device,
                             "processes": processes})  # fmt: skip


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
