"""The study report: figures (PNG), ``report.html`` (self-contained), ``report.md``.

A finished run directory holds ``results.json`` (written by the study) and, for the
image panels, ``panels.npz``. :func:`write_report` turns them into

* ``figures/fooling_<source>.png`` — Figs. 5/6, ``figures/gradcam.png`` — Fig. 3,
  ``figures/perturbations.png`` — Fig. 4, ``figures/security.png`` — the security
  evaluation's main attackers per target;
* ``report.md`` (links the PNGs) and ``report.html`` (PNGs embedded as data URIs, so the
  one file can be mailed or archived).

The package holds one part each: :mod:`~orthocore.report.results_format` (the layout of
``results.json``), :mod:`~orthocore.report.tables`, :mod:`~orthocore.report.claims` (which of
the paper's claims the numbers reproduce), :mod:`~orthocore.report.figures` and
:mod:`~orthocore.report.documents` (Markdown, HTML, the terminal summary).
"""

from orthocore.report.claims import reproduction_checks
from orthocore.report.documents import format_summary, write_report
from orthocore.report.figures import draw_figures, security_figure_attacks
from orthocore.report.results_format import RESULTS_FORMAT
from orthocore.report.tables import (defense_table, markdown_table, security_tables, side_by_side_table,
                                      similarity_table, verdict_rows)

__all__ = [
    "RESULTS_FORMAT",
    "defense_table",
    "draw_figures",
    "format_summary",
    "markdown_table",
    "reproduction_checks",
    "security_figure_attacks",
    "security_tables",
    "side_by_side_table",
    "similarity_table",
    "verdict_rows",
    "write_report",
]
