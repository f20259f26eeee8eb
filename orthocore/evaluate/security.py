"""The security evaluation of a defended model, beyond the paper's transfer protocol.

For each target model, on one seeded sample of images that every target and the public
reference K classify correctly, and over one ε grid, it measures what the field expects
of a defense evaluation (Carlini et al., "On Evaluating Adversarial Robustness";
Tramèr et al., "On Adaptive Attacks to Adversarial Example Defenses"):

* **white-box**: PGD on the target's own gradients, ``white_box_steps`` steps from
  ``restarts`` random starts, and the same attack with ``short_steps`` steps (more steps
  must not fool less); an image counts as fooled when any iterate fooled it
  (``stop_when_fooled``, as autoattack counts), which also skips the steps left. A
  target behind an input-transformation defense (:class:`~orthocore.defenses.Defended`)
  is attacked through the exact defense with BPDA's gradient (its approximation, else
  the identity: Athalye et al. 2018), and a randomized one with EOT over
  ``eot_samples`` draws per step and every step taken (its last iterate counts, judged
  under a draw of its own), as an attacker who knows the defense would;
* **query**: Square Attack on the target, ``square_queries`` queries;
* both as **worst-case sweeps** (``monotone``): the ε grid in increasing order, an image
  fooled at a smaller ε counted fooled at the larger ones (the perturbation lies in the
  larger ball) and not attacked again, the others attacked at each ε with the whole
  budget and the independent sweep's own draws;
* **transfer**: PGD crafted on each source, once for all targets: K itself, and any other
  named source — an independent surrogate, an ensemble (a list of models: their mean
  logits are attacked), an adaptive surrogate trained orthogonal to K, ...;
* **worst case** per image: fooled by any transfer source (DVERGE's "all" row), and by
  any attack at all;
* **masking diagnostics**: the mean input-gradient norm and logit margin on the clean
  images, the share of images that a black-box attack (Square or a transfer) fools
  while white-box PGD does not (≈ 0 for a model whose gradients are informative; more
  flags gradient masking), and white-box fooling at the largest ε (≈ 100 % expected).

Every ratio is the percentage of the sampled images fooled; the per-image outcomes are
kept, so every summary can be recomputed from them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from orthocore.attacks import PGD, Square
from orthocore.attacks.ensemble import as_source
from orthocore import distributed, draws
from orthocore.defenses import Defended, defended, variants
from orthocore.evaluate.batches import attack_sample, predictions
from orthocore.evaluate.settings import AttackBudget, SecurityConfig
from orthocore.evaluate.transfer import select_correct
from orthocore.metrics import logit_margin
from orthocore.modes import eval_mode
from orthocore.progress import progress as progress_report
from orthocore.runtime import versions
from orthocore.workers import Workers

WHITE_BOX, SQUARE = "white-box", "square"
WORST_TRANSFER, WORST_CASE = "worst transfer", "worst case"
REFERENCE = "K"


def transfer_row(source: str) -> str:
    """The row name of perturbations transferred from ``source``."""
    return f"transfer from {source}"


@dataclasses.dataclass
class SecurityResult:
    """The outcome of :func:`security_evaluation`.

    Attributes:
        eps: the ε grid, :math:`E` values.
        fooled: ``(target, row) →`` :math:`(E, N)` bool tensor, per ε and image whether
            the row's attack fooled the target. Rows: ``"white-box"``, ``"white-box,
            S steps"`` (the short run), ``"square"``, ``"transfer from <source>"`` per
            source, ``"worst transfer"``, ``"worst case"``.
        diagnostics: ``target →`` mean input-gradient norm, mean logit margin, the share
            (%) per ε of images a black-box attack fools and white-box PGD does not, and
            white-box fooling (%) at the largest ε.
        metadata: configuration, sources, sample size, seed and versions.
    """

    eps: tuple[float, ...]
    fooled: dict[tuple[str, str], Tensor]
    diagnostics: dict[str, dict]
    metadata: dict

    def ratio(self, target: str, row: str) -> list[float]:
        """Fooling ratio (%) of ``row`` on ``target`` per ε."""
        return (100.0 * self.fooled[target, row].float().mean(1)).tolist()

    def rows(self) -> list[dict]:
        """One record per target, row and ε: ``fooled`` images of ``total``, ``fooling_percent`` in %."""
        return [
            {"target": target, "attack": row, "eps": eps, "fooled": int(mask[e].sum()), "total": mask.shape[1],
             "fooling_percent": 100.0 * int(mask[e].sum()) / mask.shape[1]}
            for (target, row), mask in self.fooled.items()
            for e, eps in enumerate(self.eps)
        ]  # fmt: skip

    def format(self) -> str:
        """A plain-text table per target: rows × ε, fooling ratio in %."""
        lines = []
        for target in dict.fromkeys(t for t, _ in self.fooled):
            lines.append(f"{target} (fooling ratio %, n = {self.metadata['images']})")
            lines.append(f"  {'attack':<34}" + "".join(f"{f'ε={e:g}':>9}" for e in self.eps))
            for (who, row), _ in self.fooled.items():
                if who == target:
                    lines.append(f"  {row:<34}" + "".join(f"{value:9.1f}" for value in self.ratio(target, row)))
        return "\n".join(lines)


def _white_box_method(model: nn.Module, config: AttackBudget) -> str:
    """How the white-box rows attacked ``model``, in words."""
    attacked = white_box_view(model)
    if not isinstance(attacked, Defended):
        return "PGD on its own gradient"
    gradient = "the defense's approximation" if attacked.bpda == "approximation" and getattr(
        attacked.defense, "has_approximation", False) else "the identity"  # fmt: skip
    method = f"PGD through the exact defense, BPDA with {gradient} backward"
    return method + (f", EOT over {config.eot_samples} draws" if attacked.randomized else "")


def short_row(config: AttackBudget) -> str:
    """The row name of the short white-box run (the convergence check)."""
    return f"{WHITE_BOX}, {config.short_steps} steps"


def _batch_size(attack, config: SecurityConfig) -> int:
    """Clean images per batch of ``attack``: ``attack_batch``, times the number of ε for a
    monotone sweep, which attacks them one ε after another (so that each pass holds as
    many rows as a batched sweep's)."""
    return config.attack_batch * (len(config.security_eps) if attack.settings.monotone else 1)


def _expected_cost(run) -> float:
    """A run's forward and backward passes at most, per image and ε, times the targets it
    is counted on: what orders the runs so that the longest start first."""
    _, attack, _, counted = run
    if isinstance(attack, Square):
        return attack.settings.n_queries / 3  # forward passes only: about a third of a gradient step each
    return attack.settings.steps * attack.settings.restarts * attack.settings.eot + len(counted)


def _craft_and_count(attack, seed: int, targets: Mapping[str, nn.Module], images: Tensor, labels: Tensor,
                     batch_size: int) -> dict[str, Tensor]:  # fmt: skip
    """Runs ``attack`` (seeded ``seed``) on the sample in batches
    (:func:`orthocore.evaluate.batches.attack_sample`); per target the :math:`(E, N)` fooled mask."""

    def fooled_targets(adversarial: Tensor, y: Tensor, indices: Tensor) -> Tensor:  # (E, b, targets)
        return torch.stack([predictions(model, adversarial, seed, indices) != y for model in targets.values()], dim=-1)

    masks = attack_sample(attack, seed, images, labels, batch_size, fooled_targets)
    return {name: masks[..., i] for i, name in enumerate(targets)}


def defended_name(baseline: str, label: str) -> str:
    """The name of target ``baseline`` behind the defense labelled ``label``."""
    return f"{baseline} + {label}"


def with_defenses(targets: Mapping[str, nn.Module], baseline: str, labels: Sequence[str]) -> dict[str, nn.Module]:
    """``targets`` and, for each defense label (of :func:`orthocore.defenses.variants`),
    the ``baseline`` target behind that defense (:func:`defended_name`)."""
    known = variants()
    return {**targets, **{defended_name(baseline, label): defended(targets[baseline], known[label]) for label in labels}}


def white_box_view(model: nn.Module) -> nn.Module:
    """The model a white-box attacker differentiates: a target behind a defense with
    BPDA's gradient (:mod:`orthocore.defenses.bpda`; the defense's approximation where it
    has one, else the identity), any other model itself."""
    if isinstance(model, Defended) and model.bpda is None:
        return model.with_bpda("approximation")
    return model


def _eot(model: nn.Module, config: AttackBudget) -> int:
    """Draws per gradient for ``model``: ``eot_samples`` when it is randomized, else 1."""
    return config.eot_samples if getattr(model, "randomized", False) else 1


def _gradient_norm_and_margin(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int,
                              seed: int) -> tuple[float, float]:  # fmt: skip
    """Mean L2 norm of the per-image input gradient of the cross-entropy (a defended
    model's through :func:`white_box_view`), and mean logit margin (true logit minus the
    largest other) on the clean images (a randomized model under the clean draw)."""
    model = white_box_view(model)
    norms, margins = [], []
    for begin in range(0, len(labels), batch_size):
        x = images[begin : begin + batch_size].detach().requires_grad_(True)
        y = labels[begin : begin + batch_size]
        keys = draws.row_keys(seed, torch.arange(begin, begin + len(y)), draws.CLEAN_STEP)
        with torch.enable_grad(), draws.keyed(keys):
            logits = model(x)
            (grad,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), x)
        norms.append(grad.flatten(1).norm(dim=1).detach().cpu())
        margins.append(logit_margin(logits.detach(), y).cpu())
    return float(torch.cat(norms).mean()), float(torch.cat(margins).mean())


def security_evaluation(
    targets: Mapping[str, nn.Module],
    reference: nn.Module,
    dataset,
    config: SecurityConfig | None = None,
    *,
    sources: Mapping[str, nn.Module | Sequence[nn.Module]] | None = None,
    device: torch.device | str | None = None,
    workers: Workers | None = None,
    progress: bool = False,
) -> SecurityResult:
    """White-box, query, transfer and worst-case fooling ratios of every target, with
    masking diagnostics, on one seeded sample.

    Args:
        targets: name → model to evaluate (classifiers on [0, 1] images).
        reference: the public reference K the defense was trained against; always a
            transfer source (row ``"transfer from K"``).
        dataset: ``(images, labels)`` tensors or a map-style dataset of ``(image, label)``.
        config: the ε grid and the attacks' budgets (default :class:`SecurityConfig`).
        sources: further transfer sources by name: a model, or a list of models for an
            ensemble (their mean logits are attacked).
        device: where to run (default: the reference's device).
        workers: runs the attacks (one per transfer source, three per target) side by
            side (:class:`orthocore.workers.Workers`; default: one after another here).
            Each attack draws from its own seed, so the result is the same.
        progress: report each finished attack (:func:`orthocore.progress.progress`, with
            the time left at the rate so far: the longest attacks run first).

    Returns:
        A :class:`SecurityResult`.
    """
    return start_security_evaluation(targets, reference, dataset, config, sources=sources, device=device,
                                     workers=workers, progress=progress)()  # fmt: skip


def start_security_evaluation(
    targets: Mapping[str, nn.Module],
    reference: nn.Module,
    dataset,
    config: SecurityConfig | None = None,
    *,
    sources: Mapping[str, nn.Module | Sequence[nn.Module]] | None = None,
    device: torch.device | str | None = None,
    workers: Workers | None = None,
    progress: bool = False,
) -> Callable[[], SecurityResult]:
    """:func:`security_evaluation` in two halves, so that a caller can start several (a
    study's seeds) before waiting for any: the sample is drawn and every attack is
    submitted to ``workers`` now (run now with one worker); the returned function waits
    for them, computes the diagnostics and gives the :class:`SecurityResult`. Arguments
    as :func:`security_evaluation`'s."""
    config = config or SecurityConfig()
    sources = dict(sources or {})
    if not targets:
        raise ValueError("targets: expected at least one model to evaluate")
    if REFERENCE in sources:
        raise ValueError(f"sources: {REFERENCE!r} is the reference's name; give other sources other names")
    device = distributed.device(device, model=reference)
    all_sources = {REFERENCE: reference, **{name: as_source(model) for name, model in sources.items()}}
    eps = list(config.security_eps)
    workers = workers or Workers(1)
    every_model = (reference, *targets.values(), *all_sources.values())
    with eval_mode(*every_model):
        images, labels = select_correct([*targets.values(), reference], dataset, config.n_images, config.seed,
                                        config.attack_batch, device)  # fmt: skip
        runs = []  # (the (target, row) of each target it counts on, attack, seed, targets)
        for index, (name, source) in enumerate(all_sources.items()):  # each crafted once, counted on every target
            attack = PGD(source, eps, steps=config.transfer_steps, generator=torch.Generator())
            runs.append(([(target, transfer_row(name)) for target in targets], attack, config.seed + index, targets))
        for index, (target, model) in enumerate(targets.items()):
            seed = config.seed + 1000 * (index + 1)
            own, attacked, eot = {target: model}, white_box_view(model), _eot(model, config)
            # A random defense's "fooled" is a draw's: an iterate that barely fools the mean of
            # some draws often fails the evaluation's own draw, so there every step is taken,
            # and no ε inherits another's outcome.
            deterministic = not getattr(model, "randomized", False)
            monotone = config.monotone and deterministic
            white_box = dict(stop_when_fooled=deterministic, eot=eot, monotone=monotone)
            runs += [
                ([(target, WHITE_BOX)], PGD(attacked, eps, steps=config.white_box_steps, restarts=config.restarts,
                                            generator=torch.Generator(), **white_box), seed, own),
                ([(target, short_row(config))], PGD(attacked, eps, steps=config.short_steps,
                                                    generator=torch.Generator(), **white_box), seed + 1, own),
                ([(target, SQUARE)], Square(model, eps, n_queries=config.square_queries, monotone=monotone,
                                            generator=torch.Generator()), seed + 2, own),
            ]  # fmt: skip
        runs.sort(key=_expected_cost, reverse=True)  # the longest first, so that the last to finish are short
        jobs = [workers.submit(_craft_and_count, attack, seed, counted, images, labels, _batch_size(attack, config))
                for _, attack, seed, counted in runs]  # fmt: skip

    def result() -> SecurityResult:
        fooled: dict[tuple[str, str], Tensor] = {}
        finished = progress_report(list(zip(runs, jobs)), desc=f"security attacks (seed {config.seed})",
                                   unit="attack", enabled=progress)  # fmt: skip
        for (cells, _, _, _), job in finished:
            masks = job.result()
            for target, row in cells:
                fooled[target, row] = masks[target]
        with eval_mode(*every_model):
            diagnostics = _diagnostics(fooled, targets, all_sources, images, labels, config)
        return _result(fooled, diagnostics, targets, reference, sources, labels, config)

    return result


def _diagnostics(fooled: dict[tuple[str, str], Tensor], targets: Mapping[str, nn.Module], all_sources: Mapping,
                 images: Tensor, labels: Tensor, config: SecurityConfig) -> dict[str, dict]:  # fmt: skip
    """Adds each target's worst-transfer and worst-case rows to ``fooled``; returns its
    masking diagnostics."""
    diagnostics = {}
    for target, model in targets.items():
        transfers = [fooled[target, transfer_row(name)] for name in all_sources]
        attacks_run = [fooled[target, row] for row in (WHITE_BOX, short_row(config), SQUARE)]
        fooled[target, WORST_TRANSFER] = torch.stack(transfers).any(0)
        fooled[target, WORST_CASE] = torch.stack([*attacks_run, *transfers]).any(0)
        black_box = fooled[target, WORST_TRANSFER] | fooled[target, SQUARE]
        gradient_norm, margin = _gradient_norm_and_margin(model, images, labels, config.attack_batch, config.seed)
        diagnostics[target] = {
            "mean_input_gradient_norm": gradient_norm,
            "mean_logit_margin": margin,
            "black_box_only_percent": (100.0 * (black_box & ~fooled[target, WHITE_BOX]).float().mean(1)).tolist(),
            "white_box_at_largest_eps_percent": 100.0 * float(fooled[target, WHITE_BOX][-1].float().mean()),
        }
    return diagnostics


def _result(fooled: dict[tuple[str, str], Tensor], diagnostics: dict, targets: Mapping[str, nn.Module],
            reference: nn.Module, sources: Mapping, labels: Tensor, config: SecurityConfig) -> SecurityResult:  # fmt: skip
    """The :class:`SecurityResult`: the rows in the report's order, with the metadata."""
    eps = list(config.security_eps)
    order = [WHITE_BOX, short_row(config), SQUARE,
             *(transfer_row(name) for name in (REFERENCE, *sources)), WORST_TRANSFER, WORST_CASE]  # fmt: skip
    fooled = {(target, row): fooled[target, row] for target in targets for row in order}
    metadata = {
        "config": dataclasses.asdict(config) | {"security_eps": eps},
        "targets": list(targets),
        "white_box": {target: _white_box_method(model, config) for target, model in targets.items()},
        "sources": {name: (len(model) if isinstance(model, (list, tuple)) else 1) for name, model in
                    {REFERENCE: reference, **sources}.items()},
        "images": len(labels),
        "seed": config.seed,
        "versions": versions(),
    }  # fmt: skip
    return SecurityResult(tuple(eps), fooled, diagnostics, metadata)
