"""The study's figures as PNG files (matplotlib, no display needed).

* :func:`plot_fooling_curves` — Figs. 5/6: fooling ratio (%) against ε (% of the range),
  one panel per attack, one line per target model, for one source model.
* :func:`plot_gradcam_grid` — Fig. 3: the same images under Grad-CAM of several models.
* :func:`plot_perturbation_panel` — Fig. 4: clean and adversarial images over the ε grid.
* :func:`plot_security` — the security evaluation: fooling ratio (%) against ε, one
  panel per target, one line per attack, shaded between its min and max over seeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from orthocore._io import atomic_write  # noqa: E402

# Colours follow the paper's figures: source red, ordinary target black, orthogonal green;
# the reference gets its own when another model is the source.
_ROLE_STYLE = {
    "source": {"color": "tab:red", "marker": "o"},
    "ordinary": {"color": "black", "marker": "s"},
    "surrogate": {"color": "tab:purple", "marker": "v"},
    "reference": {"color": "tab:orange", "marker": "D"},  # never the source's style: both can be drawn
    "secret": {"color": "tab:blue", "marker": "P"},
}
_ORTHOGONAL_COLOURS = ["tab:green", "tab:olive", "tab:cyan", "tab:blue", "darkgreen"]


def _save(fig, path: Path) -> Path:
    atomic_write(path, lambda file: fig.savefig(file, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return Path(path)


def plot_fooling_curves(
    rows: Sequence[Mapping], source: str, roles: Mapping[str, str], path: Path, title: str | None = None
) -> Path:
    """Fooling ratio against ε for perturbations crafted on ``source``.

    Args:
        rows: transfer results with keys ``source``, ``target``, ``attack``, ``eps``
            (fraction of the range) and ``fooling_percent`` (%).
        source: which source model's rows to draw.
        roles: target name → role (``"source"``, ``"ordinary"``, ``"orthogonal"``,
            ``"surrogate"``), which sets the line style.
        path: the PNG to write.

    Returns:
        ``path``.
    """
    rows = [r for r in rows if r["source"] == source]
    if not rows:
        raise ValueError(f"plot_fooling_curves: no transfer rows for source {source!r}")
    attacks = list(dict.fromkeys(r["attack"] for r in rows))
    targets = list(dict.fromkeys(r["target"] for r in rows))
    fig, axes = plt.subplots(1, len(attacks), figsize=(3.6 * len(attacks), 3.3), squeeze=False, sharey=True)
    orthogonal_index = 0
    styles = {}
    for target in targets:
        role = roles.get(target, "ordinary")
        if role == "orthogonal":
            styles[target] = {"color": _ORTHOGONAL_COLOURS[orthogonal_index % len(_ORTHOGONAL_COLOURS)], "marker": "^"}
            orthogonal_index += 1
        else:
            styles[target] = _ROLE_STYLE.get(role, {"color": "gray", "marker": "x"})
    for ax, attack in zip(axes[0], attacks):
        for target in targets:
            points = sorted((r["eps"], r["fooling_percent"]) for r in rows if r["attack"] == attack and r["target"] == target)
            if points:
                eps, fooling = zip(*points)
                label = f"{target} ({roles.get(target, 'ordinary')})"
                ax.plot(np.array(eps) * 100, fooling, label=label, linewidth=1.6, markersize=3.5, **styles[target])
        ax.set_title(attack.upper())
        ax.set_xlabel("ε (% of dynamic range)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("fooling ratio (%)")
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle(title or f"Perturbations crafted on '{source}'", fontsize=11, y=1.03)
    return _save(fig, path)


def _to_hwc(image: np.ndarray) -> np.ndarray:
    """(C, H, W) in [0, 1] → (H, W) or (H, W, 3) for imshow."""
    return image[0] if image.shape[0] == 1 else np.transpose(image, (1, 2, 0))


def plot_gradcam_grid(images: np.ndarray, maps: Mapping[str, np.ndarray], path: Path) -> Path:
    """Grad-CAM maps of several models over the same images.

    Args:
        images: :math:`(N, C, H, W)` in [0, 1].
        maps: model name → :math:`(N, H, W)` maps in [0, 1].
        path: the PNG to write.
    """
    count = images.shape[0]
    columns = 1 + len(maps)
    fig, axes = plt.subplots(count, columns, figsize=(1.7 * columns, 1.7 * count), squeeze=False)
    for i in range(count):
        axes[i][0].imshow(_to_hwc(images[i]), cmap="gray", vmin=0, vmax=1)
        for j, (name, model_maps) in enumerate(maps.items(), start=1):
            axes[i][j].imshow(_to_hwc(images[i]), cmap="gray", vmin=0, vmax=1)
            axes[i][j].imshow(model_maps[i], cmap="jet", alpha=0.5, vmin=0, vmax=1)
            if i == 0:
                axes[i][j].set_title(name, fontsize=8)
        if i == 0:
            axes[i][0].set_title("input", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Grad-CAM (colour: relevance, 0–1)", fontsize=10)
    return _save(fig, path)


def plot_perturbation_panel(
    clean: np.ndarray, adversarial: Mapping[str, np.ndarray], eps: Sequence[float], path: Path
) -> Path:
    """Clean image and its adversarial versions for each attack and ε.

    Args:
        clean: :math:`(C, H, W)` in [0, 1].
        adversarial: attack name → :math:`(E, C, H, W)` adversarial images, one per ε.
        eps: the E values of ε (fractions of the range).
        path: the PNG to write.
    """
    attacks = list(adversarial)
    fig, axes = plt.subplots(len(attacks), 1 + len(eps), figsize=(1.5 * (1 + len(eps)), 1.6 * len(attacks)), squeeze=False)
    for i, attack in enumerate(attacks):
        axes[i][0].imshow(_to_hwc(clean), cmap="gray", vmin=0, vmax=1)
        axes[i][0].set_ylabel(attack.upper(), fontsize=8)
        for j, value in enumerate(eps, start=1):
            axes[i][j].imshow(_to_hwc(adversarial[attack][j - 1]), cmap="gray", vmin=0, vmax=1)
            if i == 0:
                axes[i][j].set_title(f"ε = {value * 100:.1f}%", fontsize=8)
        if i == 0:
            axes[i][0].set_title("clean", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return _save(fig, path)


def plot_security(rows: Sequence[Mapping], attacks: Sequence[str], path: Path) -> Path:
    """Fooling ratio against ε of the chosen attacks, one panel per target.

    Args:
        rows: security records with keys ``target``, ``attack``, ``eps`` (fraction of the
            range) and ``fooling_percent`` (%), and where several seeds differ
            ``fooling_percent_min`` / ``fooling_percent_max`` (drawn as a band).
        attacks: the attack rows to draw, in legend order; rows of other attacks are left out.
        path: the PNG to write.

    Returns:
        ``path``.
    """
    rows = [r for r in rows if r["attack"] in attacks]
    if not rows:
        raise ValueError(f"plot_security: no records of the attacks {list(attacks)}")
    targets = list(dict.fromkeys(r["target"] for r in rows))
    columns = min(len(targets), 4)  # panels in rows of four
    lines = -(-len(targets) // columns)
    fig, axes = plt.subplots(lines, columns, figsize=(3.6 * columns, 3.3 * lines), squeeze=False, sharey=True)
    for ax in axes.flat[len(targets):]:
        ax.set_visible(False)
    colours = plt.get_cmap("tab10")
    for ax, target in zip(axes.flat, targets):
        for index, attack in enumerate(attacks):
            mine = sorted((r for r in rows if r["target"] == target and r["attack"] == attack), key=lambda r: r["eps"])
            if not mine:
                continue
            eps = np.array([r["eps"] for r in mine]) * 100
            colour = colours(index % 10)
            ax.plot(eps, [r["fooling_percent"] for r in mine], marker="o", markersize=3, linewidth=1.5, color=colour,
                    label=attack)  # fmt: skip
            low = [r.get("fooling_percent_min", r["fooling_percent"]) for r in mine]
            high = [r.get("fooling_percent_max", r["fooling_percent"]) for r in mine]
            ax.fill_between(eps, low, high, color=colour, alpha=0.15, linewidth=0)
        ax.set_title(target, fontsize=9)
        ax.set_xlabel("ε (% of dynamic range)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    for line in axes:
        line[0].set_ylabel("fooling ratio (%)")
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return _save(fig, path)
