"""The tidy result table of a transfer evaluation: one row per (attack, ε, model), with
a text rendering and atomic CSV / JSON writers."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

from orthocore._io import atomic_write_text


@dataclasses.dataclass(frozen=True)
class FoolingRow:
    """Fooling on one model by one attack at one ε.

    ``fooling_percent`` is the percentage of the ``total`` evaluated images (all correctly
    classified when clean) that the model misclassifies after the perturbation.
    """

    attack: str
    eps: float
    model: str
    role: str  # "source" or "target"
    fooled: int
    total: int
    fooling_percent: float


@dataclasses.dataclass(frozen=True)
class FoolingTable:
    """Rows of a transfer evaluation and the configuration that produced them."""

    rows: tuple[FoolingRow, ...]
    metadata: dict

    def ratio(self, attack: str, eps: float, model: str) -> float:
        """The fooling ratio (%) of one cell."""
        for row in self.rows:
            if row.attack == attack and row.model == model and abs(row.eps - eps) < 1e-12:
                return row.fooling_percent
        raise KeyError(f"no row for attack={attack!r}, eps={eps}, model={model!r}")

    def format(self) -> str:
        """A text table: one line per (attack, ε), one fooling-ratio column per model."""
        models = list(dict.fromkeys(row.model for row in self.rows))
        keys = list(dict.fromkeys((row.attack, row.eps) for row in self.rows))
        cells = {(row.attack, row.eps, row.model): row.fooling_percent for row in self.rows}
        source = self.metadata.get("source")
        titles = [f"{m} (source)" if m == source else m for m in models]
        width = max([8, *(len(t) for t in titles)])
        lines = [f"{'attack':<8} {'eps':>7}  " + "  ".join(f"{t:>{width}}" for t in titles)]
        for attack, eps in keys:
            values = "  ".join(f"{cells[attack, eps, m]:>{width - 1}.1f}%" for m in models)
            lines.append(f"{attack:<8} {eps:>7.4f}  {values}")
        return "\n".join(lines)

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Writes one CSV row per table row (atomically); returns the path."""
        buffer = io.StringIO()
        fields = [f.name for f in dataclasses.fields(FoolingRow)]
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(dataclasses.asdict(row) for row in self.rows)
        atomic_write_text(path, buffer.getvalue())
        return Path(path)

    def to_json(self, path: str | os.PathLike) -> Path:
        """Writes ``{"metadata": ..., "rows": [...]}`` (atomically); returns the path."""
        document = {"metadata": self.metadata, "rows": [dataclasses.asdict(row) for row in self.rows]}
        atomic_write_text(path, json.dumps(document, indent=2) + "\n")
        return Path(path)

    @staticmethod
    def from_json(path: str | os.PathLike) -> FoolingTable:
        """Reads a table written by :meth:`to_json`."""
        document = json.loads(Path(path).read_text())
        return FoolingTable(tuple(FoolingRow(**row) for row in document["rows"]), document["metadata"])


def rows_for(attack: str, eps: Sequence[float], models: Sequence[tuple[str, str]], fooled, total: int) -> list:
    """Table rows from a fooled-count matrix ``fooled[e][m]`` for ``models`` = (name, role)."""
    return [
        FoolingRow(attack, float(e), name, role, int(fooled[i][j]), total, 100.0 * int(fooled[i][j]) / total)
        for i, e in enumerate(eps)
        for j, (name, role) in enumerate(models)
    ]
