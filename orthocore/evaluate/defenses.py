"""Table III of the paper: input-transformation defenses against the orthogonal model.

Perturbations are crafted on a source model at ε₁/ε₂ (``defense_eps``, the paper's 0.03/0.05) and transferred to

* the undefended target (an ordinary model of the source's architecture),
* the same target behind each defense variant (``defended(target, defense)``),
* each orthogonal model (no defense).

Each row reports the clean-sample fooling ratio — how often the defense alone turns a
correct prediction wrong — and the fooling ratio under each attack and ε. All images
are sampled (seeded) among those that the source, the target and every orthogonal model
classify correctly when clean, so the undefended and orthogonal rows have a clean
fooling ratio of 0 by construction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from orthocore import distributed, draws
from orthocore.attacks import make_attack
from orthocore.defenses import defended
from orthocore.evaluate.batches import attack_sample, my_batches, predictions
from orthocore.evaluate.settings import DefenseConfig
from orthocore.evaluate.transfer import select_correct
from orthocore.modes import eval_mode
from orthocore.progress import progress as progress_report


@dataclasses.dataclass(frozen=True)
class DefenseRow:
    """One row × attack × ε cell of Table III (ratios in %)."""

    target: str
    defense: str  # the defense's Table III label, "none" for an undefended model
    clean_fooling_percent: float
    attack: str
    eps: float
    fooling_percent: float
    total: int


def _wrong(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int, seed: int) -> int:
    """How many of the clean ``images`` ``model`` misclassifies (a randomized model under
    draws keyed by ``seed`` and each image's place in the sample)."""
    wrong = 0
    for begin in range(0, len(labels), batch_size):
        part = slice(begin, begin + batch_size)
        found = predictions(model, images[None, part], seed, torch.arange(len(labels))[part], draws.CLEAN_STEP)[0]
        wrong += int((found != labels[part]).sum())
    return wrong


def defense_evaluation(
    source: nn.Module,
    target: nn.Module,
    defenses: Mapping[str, nn.Module],
    orthogonal: Mapping[str, nn.Module],
    dataset,
    config: DefenseConfig | None = None,
    *,
    target_name: str = "target",
    device: torch.device | str | None = None,
    progress: bool = False,
) -> list[DefenseRow]:
    """Table III: fooling ratios of the defended target vs the orthogonal models.

    Args:
        source: the model the attacks are crafted on.
        target: the undefended model the defenses protect.
        defenses: row label (e.g. ``"JPEG-Quality=95"``) → defense module mapping images
            :math:`(B, C, H, W)` in [0, 1] to images of the same shape
            (:func:`orthocore.defenses.paper_variants` gives the paper's).
        orthogonal: name → orthogonal model.
        dataset: ``(images, labels)`` tensors or a dataset of ``(image, label)``.
        config: the attacks, their ε (``defense_eps``), the sample and the seed (default
            :class:`~orthocore.evaluate.settings.DefenseConfig`).
        target_name: the undefended target's name in the rows.
        device: where to run (default: the source's device).
        progress: report progress per attack batch (:func:`orthocore.progress.progress`).

    Returns:
        Rows in the order: undefended target, each defense, each orthogonal model; per
        row, attacks × ε.
    """
    config = config or DefenseConfig()
    attacks, eps, seed, batch_size = config.attacks, list(config.defense_eps), config.seed, config.attack_batch
    if target_name in orthogonal:
        raise ValueError(f"target_name {target_name!r} is also the name of an orthogonal model")
    device = distributed.device(device, model=source)

    variants: list[tuple[str, str, nn.Module]] = [(target_name, "none", target)]
    variants += [(target_name, label, defended(target, module)) for label, module in defenses.items()]
    variants += [(name, "none", model) for name, model in orthogonal.items()]
    models = [source, target, *orthogonal.values()]
    with eval_mode(*models):
        images, labels = select_correct(models, dataset, config.n_images, seed, batch_size, device)
        total = len(labels)
        clean = [100.0 * _wrong(model, images, labels, batch_size, seed) / total for _, _, model in variants]
        bar = progress_report(total=len(attacks) * len(my_batches(total, batch_size)), desc="defenses (Table III)",
                              unit="batch", enabled=progress)  # fmt: skip

        fooled = {}
        for index, name in enumerate(attacks):
            def wrong_variants(adversarial: Tensor, y: Tensor, indices: Tensor, seed=seed + index) -> Tensor:
                return torch.stack([predictions(model, adversarial, seed, indices) != y for _, _, model in variants],
                                   dim=-1)  # (E, b, variants)  # fmt: skip

            attack = make_attack(name, source, eps, generator=torch.Generator())
            fooled[name] = attack_sample(attack, seed + index, images, labels, batch_size, wrong_variants,
                                         bar.update).sum(1)  # (E, variants)  # fmt: skip
        bar.close()
    return [
        DefenseRow(who, defense, clean[v], name, eps[e], 100.0 * int(fooled[name][e, v]) / total, total)
        for v, (who, defense, _) in enumerate(variants)
        for name in attacks
        for e in range(len(eps))
    ]
