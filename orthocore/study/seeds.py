"""A study repeated over seeds: the seeds each model uses, and results summarised over seeds.

Every model of study seed ``s`` draws its seed from a block of its own,
``SEED_STRIDE·s + offset``, so no two study seeds share a model (the reference of seed 1
is not the ordinary retrain of seed 0) and the attacker's seeds (offsets from
:data:`~orthocore.evaluate.surrogates.ATTACKER_SEED`) never meet the defender's.

A summary keeps every record's shape, so the report reads one seed and several alike:
each number becomes its mean over the seeds, with its extremes beside it under
``<name>_min`` and ``<name>_max`` where the seeds differ (element-wise for lists of
numbers; a value every seed shares, such as an ε, gets none). Records of a table
are matched across seeds by their identifying fields, never by position.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orthocore.checks import check_number

SEED_STRIDE = 10_000


def model_seed(study_seed: int, offset: int) -> int:
    """The seed of the model at ``offset`` (0 ≤ offset < SEED_STRIDE) of study seed ``study_seed``."""
    check_number(offset, "offset", low=0, high=SEED_STRIDE, high_open=True, integer=True)
    return SEED_STRIDE * study_seed + offset


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_number_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_is_number(v) for v in value)


def summarize(records: Sequence[Any]) -> Any:
    """One record from the same record of every seed.

    Numbers become their mean (``None`` when any seed lacks it), lists of numbers their
    element-wise mean; in a mapping each such field ``name`` whose value differs between
    seeds gains ``name_min`` and ``name_max``. Mappings are summarised key by key; any other value (names, roles,
    flags) must be equal in every seed and is kept.

    Args:
        records: the record of each seed, at least one.

    Raises:
        ValueError: when a non-numeric value differs between seeds.
    """
    first = records[0]
    if isinstance(first, Mapping):
        summary: dict[str, Any] = {}
        for key in first:
            values = [record.get(key) for record in records]
            summary[key] = summarize(values)
            if all(v == values[0] for v in values):
                continue
            if all(_is_number(v) for v in values):
                summary[f"{key}_min"], summary[f"{key}_max"] = min(values), max(values)
            elif all(_is_number_list(v) for v in values) and len({len(v) for v in values}) == 1:
                summary[f"{key}_min"] = [min(column) for column in zip(*values)]
                summary[f"{key}_max"] = [max(column) for column in zip(*values)]
        return summary
    if all(_is_number(v) for v in records):
        return sum(records) / len(records)
    if any(v is None for v in records) and all(v is None or _is_number(v) for v in records):
        return None
    if all(_is_number_list(v) for v in records) and len({len(v) for v in records}) == 1:
        return [sum(column) / len(column) for column in zip(*records)]
    if any(v != first for v in records):
        raise ValueError(f"summarize: a non-numeric value differs between seeds: {records!r}")
    return first


def summarize_table(tables: Sequence[Sequence[Mapping]], keys: Sequence[str]) -> list[dict]:
    """One table from the same table of every seed, records matched by ``keys``.

    Args:
        tables: per seed, a list of records (dicts).
        keys: the fields that identify a record (e.g. source, target, attack, ε).

    Returns:
        The records of the first seed's table in its order, each summarised over the
        seeds (:func:`summarize`).

    Raises:
        ValueError: when a record is missing from some seed's table.
    """
    indexed = [{tuple(record[k] for k in keys): record for record in table} for table in tables]
    summary = []
    for identity in indexed[0]:
        missing = [i for i, table in enumerate(indexed) if identity not in table]
        if missing:
            raise ValueError(f"summarize_table: record {dict(zip(keys, identity))} is missing from seed #{missing[0]}")
        summary.append(summarize([table[identity] for table in indexed]))
    return summary
