"""Results of finished study stages, reused when the same study is run again.

Each stage's result is a JSON file ``stages/<name>.json`` holding the result and the
key it was computed for: a digest of the stage's settings and of the exact model files
it read, and the results format (:data:`orthocore.report.RESULTS_FORMAT`). A stage whose
key and format are unchanged is not recomputed; any change to a setting, to a model it
depends on or to the format recomputes it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from orthocore import distributed
from orthocore._io import atomic_write_json
from orthocore.report import RESULTS_FORMAT


class StageCache:
    """Stage results under ``run_dir/stages`` (``run_dir/stages/<group>`` for a group,
    such as one seed of the study)."""

    def __init__(self, run_dir: str | os.PathLike, group: str | None = None) -> None:
        self.dir = Path(run_dir) / "stages"
        if group is not None:
            self.dir = self.dir / group

    def get(self, name: str, key: str) -> Any | None:
        """The stored result of stage ``name`` if it was computed for ``key``, else None."""
        path = self.dir / f"{name}.json"
        if not path.is_file():
            return None
        stored = json.loads(path.read_text())
        current = stored.get("key") == key and stored.get("format", 1) == RESULTS_FORMAT
        return stored["result"] if current else None

    def put(self, name: str, key: str, result: Any) -> Any:
        """Stores (atomically; rank 0 alone under torchrun) and returns ``result``."""
        if distributed.world().main:
            atomic_write_json(self.dir / f"{name}.json", {"key": key, "format": RESULTS_FORMAT, "result": result})
        distributed.barrier()  # stored before any process looks for it again
        return result
