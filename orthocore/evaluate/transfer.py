"""The paper's transfer protocol (Jalwana et al., Section IV): craft perturbations on a
source model, measure how often they fool every model.

1. Sample ``n_images`` images (seeded) that the source and every target classify
   correctly when clean.
2. Craft each attack once on the source, for the whole ε grid in one batched run, batch
   by batch (:mod:`orthocore.evaluate.batches`: each batch seeded on its own, the
   batches shared among the processes of a ``torchrun`` job).
3. Report the fooling ratio on every model (source included) per attack and ε.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from orthocore import distributed, draws
from orthocore.attacks import make_attack
from orthocore.evaluate.batches import attack_sample, my_batches, predictions
from orthocore.evaluate.settings import TransferConfig
from orthocore.evaluate.table import FoolingTable, rows_for
from orthocore.modes import eval_mode
from orthocore.progress import progress as progress_report
from orthocore.runtime import versions


def _as_tensors(dataset) -> tuple[Tensor, Tensor] | None:
    if isinstance(dataset, (tuple, list)) and len(dataset) == 2 and all(isinstance(t, Tensor) for t in dataset):
        return dataset[0], dataset[1]
    return None


def _fetch(dataset, indices: Tensor) -> tuple[Tensor, Tensor]:
    tensors = _as_tensors(dataset)
    if tensors is not None:
        return tensors[0][indices], tensors[1][indices]
    items = [dataset[int(i)] for i in indices]
    return torch.stack([item[0] for item in items]), torch.as_tensor([int(item[1]) for item in items])


def select_correct(
    models: Sequence[nn.Module], dataset, n_images: int, seed: int, batch_size: int, device: torch.device
) -> tuple[Tensor, Tensor]:
    """A seeded random sample of up to ``n_images`` images every model classifies correctly
    (a randomized model under the draw keyed by ``seed`` and the image's index in the
    data set, :func:`~orthocore.evaluate.batches.predictions`).

    Args:
        models: classifiers on [0, 1] images, in eval mode.
        dataset: ``(images, labels)`` tensors or a map-style dataset of ``(image, label)``.

    Returns:
        ``(images, labels)``: :math:`(N, C, H, W)` on ``device`` and :math:`(N,)`;
        ``N < n_images`` only when the dataset has too few such images (with a warning).
    """
    order = torch.randperm(len(dataset[1]) if _as_tensors(dataset) else len(dataset),
                           generator=torch.Generator().manual_seed(seed))  # fmt: skip
    kept_images, kept_labels, kept = [], [], 0
    for begin in range(0, len(order), batch_size):
        indices = order[begin : begin + batch_size]
        images, labels = _fetch(dataset, indices)
        images, labels = images.to(device), labels.to(device)
        correct = torch.ones_like(labels, dtype=torch.bool)
        for model in models:
            correct &= predictions(model, images[None], seed, indices, draws.CLEAN_STEP)[0] == labels
        kept_images.append(images[correct][: n_images - kept])
        kept_labels.append(labels[correct][: n_images - kept])
        kept += len(kept_labels[-1])
        if kept == n_images:
            break
    if kept == 0:
        raise ValueError("no image of the dataset is classified correctly by every model")
    if kept < n_images:
        warnings.warn(f"only {kept} of the requested {n_images} images are classified correctly by every model")
    return torch.cat(kept_images), torch.cat(kept_labels)


def transfer_evaluation(
    source: nn.Module,
    targets: Mapping[str, nn.Module],
    dataset,
    config: TransferConfig | None = None,
    *,
    source_name: str = "source",
    device: torch.device | str | None = None,
    progress: bool = False,
) -> FoolingTable:
    """Fooling ratios of attacks crafted on ``source``, on the source and every target.

    Args:
        source: the model the attacks see (classifier on [0, 1] images).
        targets: name → model the perturbations are transferred to.
        dataset: ``(images, labels)`` tensors or a map-style dataset of ``(image, label)``
            with images :math:`(C, H, W)` in [0, 1].
        config: attacks, ε grid, sample size, seed (default :class:`TransferConfig`).
        source_name: the source's name in the table.
        device: where to run (default: the source's parameters' device).
        progress: report progress per attack batch (:func:`orthocore.progress.progress`).

    Returns:
        A :class:`~orthocore.evaluate.table.FoolingTable` with one row per attack, ε and
        model, and the configuration, seed, versions and sample size in its metadata.
    """
    config = config or TransferConfig()
    if source_name in targets:
        raise ValueError(f"source_name {source_name!r} is also the name of a target")
    device = distributed.device(device, model=source)
    models = [(source_name, "source", source)] + [(name, "target", model) for name, model in targets.items()]
    nets = [model for _, _, model in models]
    with eval_mode(*nets):
        images, labels = select_correct(nets, dataset, config.n_images, config.seed, config.attack_batch, device)
        rows = []
        bar = progress_report(total=len(config.attacks) * len(my_batches(len(labels), config.attack_batch)),
                              desc="transfer attacks", unit="batch", enabled=progress)  # fmt: skip

        for index, name in enumerate(config.attacks):
            seed = config.seed + index

            def fooled_models(adversarial: Tensor, y: Tensor, indices: Tensor, seed=seed) -> Tensor:  # (E, b, models)
                return torch.stack([predictions(model, adversarial, seed, indices) != y for model in nets], dim=-1)

            attack = make_attack(name, source, list(config.eps), generator=torch.Generator())
            fooled = attack_sample(attack, seed, images, labels, config.attack_batch, fooled_models,
                                   bar.update).sum(1)  # (E, models)  # fmt: skip
            rows += rows_for(name, config.eps, [(n, r) for n, r, _ in models], fooled.tolist(), len(labels))
        bar.close()
    metadata = {
        "config": {**dataclasses.asdict(config), "attacks": list(config.attacks), "eps": list(config.eps)},
        "source": source_name,
        "targets": list(targets),
        "images": len(labels),
        "versions": versions(),
    }
    return FoolingTable(tuple(rows), metadata)
