"""The report's figures (PNG): fooling ratio over ε per source (Figs. 5/6), the security
evaluation's main attackers per target, Grad-CAM (Fig. 3) and the perturbations (Fig. 4)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from orthocore import plots
from orthocore.evaluate.security import (
    REFERENCE,
    SQUARE,
    WHITE_BOX,
    WORST_CASE,
    transfer_row,
)


def security_figure_attacks(security: Mapping) -> list[str]:
    """The attack rows the security figure draws: white-box, Square, transfer from K,
    from the independent surrogates, from the adaptive attackers (their ensembles where
    there are several) and the worst case."""
    attackers = security.get("attackers") or {}
    chosen = [WHITE_BOX, SQUARE, transfer_row(REFERENCE)]
    chosen += [transfer_row(names[-1]) for names in attackers.values() if names]  # the ensemble comes last
    return [*chosen, WORST_CASE]


def draw_figures(run_dir: Path, results: Mapping) -> list[tuple[str, Path]]:
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
