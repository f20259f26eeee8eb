"""Figs. 3/4 of the paper, as data: Grad-CAM maps of the same images under several
models (Fig. 3) and one image's adversarial versions over an ε grid (Fig. 4), written to
one ``.npz`` file that :mod:`orthocore.report` draws."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from orthocore.attacks import make_attack
from orthocore.gradcam import gradcam


def first_images(dataset, count: int) -> tuple[Tensor, Tensor]:
    """The first ``count`` images :math:`(n, C, H, W)` and labels :math:`(n,)` of ``dataset``."""
    items = [dataset[i] for i in range(min(count, len(dataset)))]
    return torch.stack([x for x, _ in items]), torch.as_tensor([int(y) for _, y in items])


def write_panels(path: str | Path, models: Mapping[str, nn.Module], source: nn.Module, images: Tensor, labels: Tensor,
                 attacks: Sequence[str], eps: Sequence[float], seed: int) -> dict:  # fmt: skip
    """Computes both panels and writes them to ``path`` (atomically).

    Args:
        path: the ``.npz`` file.
        models: name → model whose Grad-CAM maps Fig. 3 shows.
        source: the model Fig. 4's attacks are crafted on.
        images, labels: :math:`(n, C, H, W)` and :math:`(n,)` on the models' device; Fig. 4
            perturbs the first image.
        attacks, eps: Fig. 4's attacks (names of :data:`orthocore.attacks.ATTACKS`) and ε grid.
        seed: seeds the attacks' random draws.

    Returns:
        What :mod:`orthocore.report` needs beside the arrays: ``gradcam_models``,
        ``perturbation_attacks``, ``perturbation_eps``.
    """
    path = Path(path)
    arrays = {"gradcam_images": images.cpu().numpy()}
    for i, model in enumerate(models.values()):
        arrays[f"gradcam_{i}"] = gradcam(model, images, labels).cpu().numpy()
    clean, label = images[:1], labels[:1]
    arrays["perturbation_clean"] = clean[0].cpu().numpy()
    for name in attacks:
        adversarial = make_attack(name, source, list(eps), generator=torch.Generator().manual_seed(seed))(clean, label)
        arrays[f"perturbation_{name}"] = adversarial[:, 0].detach().cpu().numpy()  # (E, C, H, W)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
    return {"gradcam_models": list(models), "perturbation_attacks": list(attacks), "perturbation_eps": list(eps)}
