"""The report's tables, as (header, rows) of strings: Tables I/II, Table III, the
security evaluation per target and side by side, and the verdicts; each number the mean
over seeds with its min–max in brackets where the seeds differ."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from orthocore.evaluate.security import (
    REFERENCE,
    SQUARE,
    WHITE_BOX,
    WORST_CASE,
    transfer_row,
)


def _fmt(value, digits=1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _spread(record: Mapping, key: str, digits: int = 1, index: int | None = None) -> str:
    """``record[key]`` formatted, with its min–max over seeds in brackets where they differ
    (``index``: the element of a per-ε list)."""
    pick = (lambda v: v) if index is None else (lambda v: v[index])
    value = _fmt(None if record.get(key) is None else pick(record[key]), digits)
    if f"{key}_min" not in record:
        return value
    return f"{value} ({pick(record[f'{key}_min']):.{digits}f}–{pick(record[f'{key}_max']):.{digits}f})"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(h.replace("|", "\\|") for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def similarity_table(models: Sequence[Mapping]) -> tuple[list[str], list[list[str]]]:
    """Tables I/II: δ against the reference, accuracy and training time per model."""
    header = ["model", "role", "λ", "test accuracy (%)", "δ (mean ± std)", "|δ| (mean ± std)", "training time (s)"]
    rows = []
    for m in models:
        d = m.get("delta") or {}
        rows.append(
            [
                m["name"],
                m["role"],
                _fmt(m.get("lambda"), 2),
                _spread(m, "test_accuracy", 2),
                f"{_spread(d, 'signed_mean', 3)} ± {_fmt(d.get('signed_std'), 3)}" if d else "(reference)",
                f"{_spread(d, 'abs_mean', 3)} ± {_fmt(d.get('abs_std'), 3)}" if d else "(reference)",
                _spread(m, "train_seconds", 1),
            ]
        )
    return header, rows


def defense_table(rows: Sequence[Mapping]) -> tuple[list[str], list[list[str]]]:
    """Table III: clean fooling ratio and fooling under each attack at ε₁/ε₂ per row."""
    attacks = list(dict.fromkeys(r["attack"] for r in rows))
    eps = sorted({r["eps"] for r in rows})
    # "clean": clean images the defense alone makes the target misclassify (the paper's
    # clean-sample fooling ratio); ε in % of the range, as in the figures.
    header = ["target", "defense", "clean images fooled by the defense alone (%)"] + [
        f"{a.upper()} fooling at ε = {' / '.join(f'{e * 100:g}' for e in eps)} % (%)" for a in attacks
    ]
    variants = list(dict.fromkeys((r["target"], r["defense"]) for r in rows))
    table = []
    for target, defense in variants:
        mine = [r for r in rows if (r["target"], r["defense"]) == (target, defense)]
        cells = [target, defense, _spread(mine[0], "clean_fooling_percent")]
        for attack in attacks:
            by_eps = {r["eps"]: r for r in mine if r["attack"] == attack}
            cells.append(" / ".join(_spread(by_eps[e], "fooling_percent") if e in by_eps else "–" for e in eps))
        table.append(cells)
    return header, table


def security_tables(security: Mapping) -> list[tuple[str, list[str], list[list[str]]]]:
    """Per target of the security evaluation: (caption, header, rows), fooling ratio in %
    per attack (rows) and ε (columns), then its masking diagnostics; min–max over seeds
    in brackets."""
    eps = security["eps"]
    tables = []
    for target in dict.fromkeys(row["target"] for row in security["rows"]):
        records: dict[str, dict[float, Mapping]] = {}
        for row in security["rows"]:
            if row["target"] == target:
                records.setdefault(row["attack"], {})[row["eps"]] = row
        diagnostics = security["diagnostics"][target]
        rows = [[attack, *(_spread(by_eps[e], "fooling_percent") for e in eps)] for attack, by_eps in records.items()]
        rows.append(["black-box fools, white-box does not (masking flag)",
                     *(_spread(diagnostics, "black_box_only_percent", index=i) for i in range(len(eps)))])  # fmt: skip
        caption = (f"{target}: fooling ratio (%) of {_spread(security, 'images', 0)} images; mean input-gradient "
                   f"norm {_spread(diagnostics, 'mean_input_gradient_norm', 3)}, mean logit margin "
                   f"{_spread(diagnostics, 'mean_logit_margin', 2)}")  # fmt: skip
        tables.append((caption, ["attack", *(f"ε = {e:g}" for e in eps)], rows))
    return tables


def side_by_side_table(security: Mapping) -> tuple[list[str], list[list[str]]]:
    """Every target of the security evaluation (the ordinary model, the orthogonal ones,
    the ordinary model behind each input-transformation defense) on the same attacks:
    transfer from K, from the independent surrogates and from the adaptive attacker who
    knows K (their ensembles where there are several), white-box (through a defense:
    BPDA, EOT where random) and Square; fooling ratio (%) at each ε."""
    attackers = security.get("attackers") or {}
    columns = [("transfer from K", transfer_row(REFERENCE))]
    for kind, caption in (("surrogates", "transfer from independent surrogates"),
                          ("adaptive", "transfer from adaptive surrogates (know K)")):  # fmt: skip
        if attackers.get(kind):
            columns.append((caption, transfer_row(attackers[kind][-1])))
    columns += [("white-box PGD (through a defense: BPDA, EOT)", WHITE_BOX), ("Square", SQUARE),
                ("worst case", WORST_CASE)]  # fmt: skip
    eps = security["eps"]
    cells = {(row["target"], row["attack"], row["eps"]): row for row in security["rows"]}
    table = []
    for target in dict.fromkeys(row["target"] for row in security["rows"]):
        table.append([target, *(" / ".join(_spread(cells[target, attack, e], "fooling_percent") if
                                           (target, attack, e) in cells else "–" for e in eps)
                                for _, attack in columns)])  # fmt: skip
    scale = " / ".join(f"{e:g}" for e in eps)
    return ["target", *(f"{caption}, ε = {scale}" for caption, _ in columns)], table


def verdict_rows(security: Mapping) -> list[list[str]]:
    """The security evaluation's verdicts: (target, claim, outcome, evidence) rows."""
    return [[v["target"], v["claim"], v["outcome"], v["evidence"]] for v in security["verdicts"]]
