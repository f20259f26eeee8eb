"""The study report: figures (PNG), ``report.html`` (self-contained), ``report.md``.

A finished run directory holds ``results.json`` (written by the study) and, for the
image panels, ``panels.npz``. :func:`write_report` turns them into

* ``figures/fooling_<source>.png`` — Figs. 5/6, ``figures/gradcam.png`` — Fig. 3,
  ``figures/perturbations.png`` — Fig. 4, ``figures/security.png`` — the security
  evaluation's main attackers per target;
* ``report.md`` (links the PNGs) and ``report.html`` (PNGs embedded as data URIs, so the
  one file can be mailed or archived).

``results.json`` schema, format :data:`RESULTS_FORMAT` (all fooling ratios and accuracies
in %, named ``*_percent`` where the name could read as a fraction; ε as fractions). The
tables are summaries over the study's seeds: each number is the mean over the seeds and,
where the seeds differ, ``<name>_min`` / ``<name>_max`` hold its extremes
(:mod:`orthocore.study.seeds`); ``per_seed`` holds each seed's own tables.

.. code-block:: text

    format, title, seeds[int], config{}, versions{}, timings{stage: seconds}, notes[str],
    data{spec, images{train, val, test}}
    models[]:   name, role (reference|ordinary|surrogate|orthogonal|private|secret), lambda,
                test_accuracy, train_seconds,
                delta{signed_mean, signed_std, abs_mean, abs_std}   (against the reference)
    transfer[]: source, target, attack, eps, fooling_percent, n
    defenses[]: target, defense (Table III label or "none"), clean_fooling_percent, attack,
                eps, fooling_percent, total
    panels{}:   gradcam_models[str], perturbation_attacks[str], perturbation_eps[float]
    security{}: eps[float], images, adaptive_lambda,
                attackers{surrogates[str], adaptive[str], adaptive_without_k[str]}  (source names)
                rows[]: target, attack, eps, fooled, total, fooling_percent
                diagnostics{target: {mean_input_gradient_norm, mean_logit_margin,
                                     black_box_only_percent[per ε], white_box_at_largest_eps_percent}}
                verdicts[]: claim, target, outcome, defended[per seed], baseline[per seed], evidence
                (null when the study ran without it)
    per_seed[]: seed, similarity[] (as models[]), transfer[], defenses[], security{} (without verdicts)

The report states plainly which of the paper's claims the measured numbers reproduce
(:func:`reproduction_checks`): verdicts come from the numbers, never from expectations.
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from orthocore import plots
from orthocore._io import atomic_write_text
from orthocore.evaluate.security import REFERENCE, SQUARE, WHITE_BOX, WORST_CASE, transfer_row

# The version of results.json's layout (and of the study's stored stage results), raised
# whenever a stored field changes. 2: fooling ratios are ``fooling_percent``. 3: the models'
# accuracy is ``test_accuracy`` (what it always measured), the security evaluation holds
# the input-transformation defenses and ``white_box``, and ``data`` names the splits.
RESULTS_FORMAT = 3


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


def _fooling(transfer, source, target, attack, eps):
    for r in transfer:
        if (r["source"], r["target"], r["attack"]) == (source, target, attack) and abs(r["eps"] - eps) < 1e-9:
            return r["fooling_percent"]
    return None


def reproduction_checks(results: Mapping) -> list[tuple[str, str, str]]:
    """The paper's claims, each with what this run measured and a verdict.

    With several seeds (``per_seed``) each claim is checked on every seed's own tables:
    it is reproduced when it holds in every seed, not reproduced when in none, and
    inconclusive otherwise; the measured text gives the means over the seeds.

    Returns:
        ``(claim, measured, verdict)`` triples; verdict is ``"reproduced"``,
        ``"not reproduced"``, ``"inconclusive over seeds"`` or ``"not measured"``.
    """
    checks = _claims_of(results)
    seeds = results.get("per_seed") or []
    if len(seeds) < 2:
        return checks
    per_seed = [
        _claims_of({"models": seed["similarity"], "transfer": seed["transfer"], "defenses": seed["defenses"],
                    "config": results.get("config")})
        for seed in seeds
    ]  # fmt: skip
    combined = []
    for i, (claim, measured, _) in enumerate(checks):
        verdicts = [seed_checks[i][2] for seed_checks in per_seed]
        reproduced = verdicts.count("reproduced")
        verdict = verdicts[0] if len(set(verdicts)) == 1 else "inconclusive over seeds"
        if verdict != "not measured":
            measured += f" (means over {len(seeds)} seeds; reproduced in {reproduced} of {len(seeds)})"
        combined.append((claim, measured, verdict))
    return combined


def _claims_of(results: Mapping) -> list[tuple[str, str, str]]:
    """:func:`reproduction_checks` on one set of tables."""
    models = results.get("models", [])
    by_role: dict[str, list[Mapping]] = {}
    for m in models:
        by_role.setdefault(m["role"], []).append(m)
    reference = (by_role.get("reference") or [None])[0]
    ordinary = (by_role.get("ordinary") or [None])[0]
    orthogonal = by_role.get("orthogonal", [])
    checks = []

    claim = "Orthogonal training drives δ to the reference towards 0; an ordinary retrain stays correlated (Tables I/II)"
    if ordinary and orthogonal and ordinary.get("delta"):
        base = ordinary["delta"]["abs_mean"]
        measured = f"|δ| ordinary {base:.3f}; " + ", ".join(
            f"λ={m['lambda']:g}: {m['delta']['abs_mean']:.3f}" for m in orthogonal
        )
        ok = all(m["delta"]["abs_mean"] < 0.5 * base for m in orthogonal)
        checks.append((claim, measured, "reproduced" if ok else "not reproduced"))
    else:
        checks.append((claim, "–", "not measured"))

    claim = "Orthogonal models keep their accuracy: within 5 points of the reference (Table I)"
    if reference and orthogonal:
        drops = [(m["lambda"], reference["test_accuracy"] - m["test_accuracy"]) for m in orthogonal]
        measured = ", ".join(f"λ={lam:g}: {abs(drop):.2f} points {'below' if drop > 0 else 'above'} the reference"
                             for lam, drop in drops)  # fmt: skip
        verdict = "reproduced" if all(drop <= 5 for _, drop in drops) else "not reproduced"
        checks.append((claim, measured, verdict))
    else:
        checks.append((claim, "–", "not measured"))

    transfer = results.get("transfer", [])
    claim = "Transferred attacks fool the orthogonal target less than the ordinary retrained target (Figs. 5/6)"
    if transfer and ordinary and orthogonal:
        # Compared at the study's larger Table III ε (the paper's ε₂ = 5 % by default).
        wanted = (results.get("config") or {}).get("defense_eps", [0.05])[-1]
        eps = min({r["eps"] for r in transfer}, key=lambda e: abs(e - wanted))
        parts, wins, total = [], 0, 0
        for source in dict.fromkeys(r["source"] for r in transfer):
            for attack in dict.fromkeys(r["attack"] for r in transfer):
                base = _fooling(transfer, source, ordinary["name"], attack, eps)
                best = min(
                    (f for m in orthogonal if (f := _fooling(transfer, source, m["name"], attack, eps)) is not None),
                    default=None,
                )
                if base is None or best is None:
                    continue
                total += 1
                wins += best < base
                parts.append(f"{source}/{attack}: {base:.1f}% → {best:.1f}%")
        measured = f"at ε = {eps * 100:g}%, ordinary → best orthogonal: " + "; ".join(parts)
        verdict = "reproduced" if total and wins == total else ("not reproduced" if total else "not measured")
        checks.append((claim, measured + f" ({wins}/{total} lower)", verdict))
    else:
        checks.append((claim, "–", "not measured"))

    defenses = results.get("defenses", [])
    claim = "Input-transformation defenses change clean predictions; the orthogonal model does not need to (Table III)"
    if defenses:
        clean = {(r["target"], r["defense"]): r["clean_fooling_percent"] for r in defenses}
        defended = [v for (_, d), v in clean.items() if d != "none"]
        undefended = [v for (_, d), v in clean.items() if d == "none"]
        measured = f"clean fooling: defenses {min(defended):.1f}–{max(defended):.1f}%, undefended models {max(undefended):.1f}%"
        verdict = "reproduced" if max(defended) > 0 and max(undefended) == 0 else "not reproduced"
        checks.append((claim, measured, verdict))
    else:
        checks.append((claim, "–", "not measured"))
    return checks


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


def security_figure_attacks(security: Mapping) -> list[str]:
    """The attack rows the security figure draws: white-box, Square, transfer from K,
    from the independent surrogates, from the adaptive attackers (their ensembles where
    there are several) and the worst case."""
    attackers = security.get("attackers") or {}
    chosen = [WHITE_BOX, SQUARE, transfer_row(REFERENCE)]
    chosen += [transfer_row(names[-1]) for names in attackers.values() if names]  # the ensemble comes last
    return [*chosen, WORST_CASE]


def _figures(run_dir: Path, results: Mapping) -> list[tuple[str, Path]]:
    """Draws every figure the run's data allows; returns (caption, path) pairs."""
    figure_dir = run_dir / "figures"
    figure_dir.mkdir(exist_ok=True)
    figures = []
    roles = {m["name"]: m["role"] for m in results.get("models", [])}
    transfer = results.get("transfer", [])
    for source in dict.fromkeys(r["source"] for r in transfer):
        source_roles = {**roles, source: "source"}
        path = plots.plot_fooling_curves(transfer, source, source_roles, figure_dir / f"fooling_{source}.png")
        figures.append((f"Fooling ratio vs ε, perturbations crafted on '{source}' (Figs. 5/6)", path))
    security = results.get("security")
    if security:
        path = plots.plot_security(security["rows"], security_figure_attacks(security), figure_dir / "security.png")
        seeds = len(results.get("seeds") or [None])
        band = f"; bands: min–max over {seeds} seeds" if seeds > 1 else ""
        figures.append((f"Security evaluation: fooling ratio vs ε of the main attackers per target{band}", path))
    panels_file = run_dir / "panels.npz"
    panels = results.get("panels", {})
    if panels_file.exists() and panels:
        with np.load(panels_file) as data:
            if panels.get("gradcam_models"):
                maps = {name: data[f"gradcam_{i}"] for i, name in enumerate(panels["gradcam_models"])}
                path = plots.plot_gradcam_grid(data["gradcam_images"], maps, figure_dir / "gradcam.png")
                figures.append(("Grad-CAM of the reference and orthogonal models (Fig. 3)", path))
            if panels.get("perturbation_attacks"):
                adversarial = {a: data[f"perturbation_{a}"] for a in panels["perturbation_attacks"]}
                path = plots.plot_perturbation_panel(
                    data["perturbation_clean"], adversarial, panels["perturbation_eps"], figure_dir / "perturbations.png"
                )
                figures.append(("Clean and adversarial images over the ε grid (Fig. 4)", path))
    return figures


def _html_table(header, rows) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}th,td{border:1px solid #bbb;padding:3px 8px;text-align:left}
th{background:#eee}img{max-width:100%;border:1px solid #ddd;margin:0.5em 0}
.reproduced{color:#17702a}.not-reproduced{color:#b01c1c}.not-measured{color:#777}pre{background:#f6f6f6;padding:0.8em;overflow:auto}
"""

# Marks, once the page has loaded, how many figures actually decoded: the report's
# test reads these attributes from the rendered DOM.
_IMAGE_CHECK = """
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  document.body.dataset.imagesTotal = images.length;
  document.body.dataset.imagesLoaded = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
});
"""


def write_report(run_dir: str | os.PathLike) -> dict[str, Path]:
    """Builds the figures, ``report.md`` and ``report.html`` of a finished run.

    Args:
        run_dir: a directory with ``results.json`` (and optionally ``panels.npz``).

    Returns:
        Mapping with the paths of ``html``, ``markdown`` and each figure.

    Raises:
        FileNotFoundError: if ``run_dir/results.json`` does not exist.
        ValueError: if it was written in another format than :data:`RESULTS_FORMAT`.
    """
    run_dir = Path(run_dir)
    results_file = run_dir / "results.json"
    if not results_file.is_file():
        raise FileNotFoundError(f"write_report: {results_file} not found: run the study first (orthocore demo / run)")
    results = json.loads(results_file.read_text())
    if results.get("format", 1) != RESULTS_FORMAT:
        raise ValueError(f"write_report: {results_file} has format {results.get('format', 1)}, this orthocore reads "
                         f"format {RESULTS_FORMAT}: run the study again (trained models are reused)")  # fmt: skip
    figures = _figures(run_dir, results)
    checks = reproduction_checks(results)
    tables = [("Tables I/II — similarity to the reference, accuracy, cost", similarity_table(results.get("models", [])))]
    if results.get("defenses"):
        tables.append(("Table III — defenses vs the orthogonal model", defense_table(results["defenses"])))
    title = results.get("title", "orthocore study")
    config_text = json.dumps(
        {k: results.get(k) for k in ("seeds", "config", "versions", "timings")}, indent=2, sort_keys=True
    )

    md = [f"# {title}", "", "## What was reproduced", ""]
    md += [markdown_table(["claim (paper)", "measured here", "verdict"], checks), ""]
    md += [f"- {note}" for note in results.get("notes", [])] + [""]
    for caption, (header, rows) in tables:
        md += [f"## {caption}", "", markdown_table(header, rows), ""]
    security = results.get("security")
    if security:
        md += ["## Security evaluation (beyond the paper)", "", _SECURITY_TEXT, ""]
        md += [markdown_table(["model", "claim", "verdict", "measured (mean over the ε grid)"], _verdict_rows(security)), ""]
        md += ["### Orthogonal models and input-transformation defenses on the same attacks", "", _SIDE_BY_SIDE_TEXT,
               "", markdown_table(*side_by_side_table(security)), ""]
        for caption, header, rows in security_tables(security):
            md += [f"### {caption}", "", markdown_table(header, rows), ""]
    md += ["## Figures", ""] + [f"![{caption}](figures/{path.name})\n\n*{caption}*\n" for caption, path in figures]
    md += ["## Configuration, versions, seeds, timings", "", "```json", config_text, "```", ""]
    markdown_path = run_dir / "report.md"
    atomic_write_text(markdown_path, "\n".join(md))

    parts = [f"<h1>{html.escape(title)}</h1>", "<h2>What was reproduced</h2>"]
    check_rows = "".join(
        f"<tr><td>{html.escape(c)}</td><td>{html.escape(m)}</td>"
        f"<td class='{v.replace(' ', '-')}'>{html.escape(v)}</td></tr>"
        for c, m, v in checks
    )
    parts.append(f"<table><thead><tr><th>claim (paper)</th><th>measured here</th><th>verdict</th></tr></thead>"
                 f"<tbody>{check_rows}</tbody></table>")
    parts += ["<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in results.get("notes", [])) + "</ul>"]
    for caption, (header, rows) in tables:
        parts += [f"<h2>{html.escape(caption)}</h2>", _html_table(header, rows)]
    if security:
        parts += ["<h2>Security evaluation (beyond the paper)</h2>", f"<p>{html.escape(_SECURITY_TEXT)}</p>",
                  _html_table(["model", "claim", "verdict", "measured (mean over the ε grid)"], _verdict_rows(security)),
                  "<h3>Orthogonal models and input-transformation defenses on the same attacks</h3>",
                  f"<p>{html.escape(_SIDE_BY_SIDE_TEXT)}</p>", _html_table(*side_by_side_table(security))]
        for caption, header, rows in security_tables(security):
            parts += [f"<h3>{html.escape(caption)}</h3>", _html_table(header, rows)]
    parts.append("<h2>Figures</h2>")
    for caption, path in figures:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        parts.append(
            f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    parts += ["<h2>Configuration, versions, seeds, timings</h2>", f"<pre>{html.escape(config_text)}</pre>"]
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style><script>{_IMAGE_CHECK}</script></head><body>{''.join(parts)}</body></html>"
    )
    html_path = run_dir / "report.html"
    atomic_write_text(html_path, page)
    return {"html": html_path, "markdown": markdown_path, **{path.stem: path for _, path in figures}}


def format_summary(results: Mapping) -> str:
    """The study's closing text for the terminal: Tables I/II, Table III and the verdicts."""
    header, rows = similarity_table(results.get("models", []))
    parts = ["Tables I/II — against the reference:", markdown_table(header, rows)]
    if results.get("defenses"):
        header, rows = defense_table(results["defenses"])
        parts += ["", "Table III — defenses vs the orthogonal models:", markdown_table(header, rows)]
    parts += ["", "What was reproduced:"]
    parts += [f"  [{verdict}] {claim}\n      {measured}" for claim, measured, verdict in reproduction_checks(results)]
    if results.get("security"):
        parts += ["", "Security evaluation (beyond the paper): " + _SECURITY_TEXT]
        parts += [f"  [{verdict}] {model}: {claim}\n      {measured}"
                  for model, claim, verdict, measured in _verdict_rows(results["security"])]  # fmt: skip
    return "\n".join(parts)


_SECURITY_TEXT = (
    "The paper measures transfer only. Here the same models face white-box PGD, the query attack Square, "
    "and adaptive attackers who train their own surrogate orthogonal to K (or, not knowing K, to a model of "
    "their own); a model trained orthogonal to K and to references the defender keeps secret faces the "
    "attacker who knows K only. The ordinary retrain behind each input-transformation defense faces the same "
    "attacks, the white-box one through the exact defense with BPDA's gradient (and EOT over its draws where "
    "it is random), as Athalye et al. (2018) attacked these defenses. The white-box and Square rows are "
    "worst-case sweeps over the ε grid: an image fooled at a smaller ε counts as fooled at the larger ones and is "
    "attacked on from its last point; the paper's figures (Figs. 5/6, Table III) attack each ε on its own, as a run "
    "of that ε alone would. Each verdict compares a defended model "
    "with the ordinary retrain (the secret one also with the orthogonal model of the same λ), is computed "
    "from the numbers below and holds only when it holds in every seed."
)

_SIDE_BY_SIDE_TEXT = (
    "Both kinds of defense measured the same way: each cell is the fooling ratio (%) at each ε of the security "
    "grid, on one sample of images every target classifies correctly; min–max over seeds in brackets."
)


def _verdict_rows(security: Mapping) -> list[list[str]]:
    return [[v["target"], v["claim"], v["outcome"], v["evidence"]] for v in security["verdicts"]]
