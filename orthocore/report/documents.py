"""The report's documents: ``report.md`` (links the figures), ``report.html`` (the figures
embedded as data URIs, so that the one file can be mailed or archived) and the study's
closing summary for the terminal."""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Mapping
from pathlib import Path

from orthocore._io import atomic_write_text
from orthocore.report.claims import reproduction_checks
from orthocore.report.figures import draw_figures
from orthocore.report import tables
from orthocore.report.results_format import RESULTS_FORMAT


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
    figures = draw_figures(run_dir, results)
    checks = reproduction_checks(results)
    sections = [("Tables I/II — similarity to the reference, accuracy, cost",
                 tables.similarity_table(results.get("models", [])))]  # fmt: skip
    if results.get("defenses"):
        sections.append(("Table III — defenses vs the orthogonal model", tables.defense_table(results["defenses"])))
    title = results.get("title", "orthocore study")
    config_text = json.dumps(
        {k: results.get(k) for k in ("seeds", "config", "versions", "timings")}, indent=2, sort_keys=True
    )

    md = [f"# {title}", "", "## What was reproduced", ""]
    md += [tables.markdown_table(["claim (paper)", "measured here", "verdict"], checks), ""]
    md += [f"- {note}" for note in results.get("notes", [])] + [""]
    for caption, (header, rows) in sections:
        md += [f"## {caption}", "", tables.markdown_table(header, rows), ""]
    security = results.get("security")
    if security:
        md += ["## Security evaluation (beyond the paper)", "", _SECURITY_TEXT, ""]
        verdicts = tables.markdown_table(["model", "claim", "verdict", "measured (mean over the ε grid)"],
                                         tables.verdict_rows(security))  # fmt: skip
        md += [verdicts, ""]
        md += ["### Orthogonal models and input-transformation defenses on the same attacks", "", _SIDE_BY_SIDE_TEXT,
               "", tables.markdown_table(*tables.side_by_side_table(security)), ""]
        for caption, header, rows in tables.security_tables(security):
            md += [f"### {caption}", "", tables.markdown_table(header, rows), ""]
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
    for caption, (header, rows) in sections:
        parts += [f"<h2>{html.escape(caption)}</h2>", _html_table(header, rows)]
    if security:
        parts += ["<h2>Security evaluation (beyond the paper)</h2>", f"<p>{html.escape(_SECURITY_TEXT)}</p>",
                  _html_table(["model", "claim", "verdict", "measured (mean over the ε grid)"], tables.verdict_rows(security)),
                  "<h3>Orthogonal models and input-transformation defenses on the same attacks</h3>",
                  f"<p>{html.escape(_SIDE_BY_SIDE_TEXT)}</p>", _html_table(*tables.side_by_side_table(security))]
        for caption, header, rows in tables.security_tables(security):
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
    header, rows = tables.similarity_table(results.get("models", []))
    parts = ["Tables I/II — against the reference:", tables.markdown_table(header, rows)]
    if results.get("defenses"):
        header, rows = tables.defense_table(results["defenses"])
        parts += ["", "Table III — defenses vs the orthogonal models:", tables.markdown_table(header, rows)]
    parts += ["", "What was reproduced:"]
    parts += [f"  [{verdict}] {claim}\n      {measured}" for claim, measured, verdict in reproduction_checks(results)]
    if results.get("security"):
        parts += ["", "Security evaluation (beyond the paper): " + _SECURITY_TEXT]
        parts += [f"  [{verdict}] {model}: {claim}\n      {measured}"
                  for model, claim, verdict, measured in tables.verdict_rows(results["security"])]  # fmt: skip
    return "\n".join(parts)


_SECURITY_TEXT = (
    "The paper measures transfer only. Here the same models face white-box PGD, the query attack Square, "
    "and adaptive attackers who train their own surrogate orthogonal to K (or, not knowing K, to a model of "
    "their own); a model trained orthogonal to K and to references the defender keeps secret faces the "
    "attacker who knows K only. The ordinary retrain behind each input-transformation defense faces the same "
    "attacks, the white-box one through the exact defense with BPDA's gradient (and EOT over its draws where "
    "it is random), as Athalye et al. (2018) attacked these defenses. The white-box and Square rows are "
    "worst-case sweeps over the ε grid: an image fooled at a smaller ε counts as fooled at the larger ones and is "
    "not attacked again, every other image is attacked at each ε as a run of it alone would be; the paper's figures (Figs. 5/6, Table III) attack each ε on its own, as a run "
    "of that ε alone would. Each verdict compares a defended model "
    "with the ordinary retrain (the secret one also with the orthogonal model of the same λ), is computed "
    "from the numbers below and holds only when it holds in every seed."
)


_SIDE_BY_SIDE_TEXT = (
    "Both kinds of defense measured the same way: each cell is the fooling ratio (%) at each ε of the security "
    "grid, on one sample of images every target classifies correctly; min–max over seeds in brackets."
)
