"""Results of finished study stages, reused when the same study is run again.

Each stage's result is a JSON file ``stages/<name>.json`` holding the result and the
key it was computed for: a digest of the stage's settings and of the exact model files
it read, and the results format (:data:`orthocore.report.RESULTS_FORMAT`). A stage whose
key and format are unchanged is not recomputed; any change to a setting, to a model it
depends on or to the format recomputes it.

Each file also records the SHA-256 of its result (:func:`result_digest`), checked with
the parse whenever it is read: a file that does not parse, or whose result does not
match its digest (emptied, truncated, edited), is moved aside with a one-line warning
(:func:`orthocore._io.move_aside`) and the stage is computed again. A file without a
digest (written before digests were recorded) is computed again too.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from orthocore import distributed
from orthocore._io import atomic_write_json, move_aside
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
        try:
            stored = json.loads(path.read_text())
            problem = None if isinstance(stored, dict) and "result" in stored else "not a stage result"
        except (ValueError, UnicodeDecodeError) as error:
            stored, problem = None, f"does not parse: {error}"
        if problem is None and "digest" in stored and stored["digest"] != result_digest(stored["result"]):
            problem = "its result does not match the digest recorded with it"
        if problem is not None:
            if distributed.world().main:
                move_aside(path, problem)
            return None
        current = stored.get("key") == key and stored.get("format", 1) == RESULTS_FORMAT and "digest" in stored
        return stored["result"] if current else None

    def put(self, name: str, key: str, result: Any) -> Any:
        """Stores (atomically; rank 0 alone under torchrun) and returns ``result``."""
        if distributed.world().main:
            record = {"key": key, "format": RESULTS_FORMAT, "digest": result_digest(result), "result": result}
            atomic_write_json(self.dir / f"{name}.json", record)
        distributed.barrier()  # stored before any process looks for it again
        return result


def result_digest(result: Any) -> str:
    """SHA-256 of ``result`` as canonical JSON (sorted keys): what a stage file records."""
    return hashlib.sha256(json.dumps(result, sort_keys=True).encode()).hexdigest()
