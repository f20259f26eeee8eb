"""The attacker's models for a security evaluation, trained with the defender's own method.

In the paper's setting the reference K is public. Three kinds of attacker surrogate:

* **ordinary**: an independent model of the same architecture (a seed of the attacker's);
* **adaptive**: trained orthogonal to K with the defender's λ and penalty, and a seed the
  defender never used — the attacker who knows the defense (Tramèr et al. 2020);
* **adaptive without K**: trained orthogonal to the attacker's own ordinary model — the
  attacker who knows the method but not K, which tests whether keeping K secret helps.

Every model is trained in a folder named by a digest of its configuration, so a second
evaluation reuses finished models and resumes an interrupted one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping
from pathlib import Path

from orthocore.checks import check_number
from orthocore.model_specs import spec_digest
from orthocore.train import TrainConfig
from orthocore.train.schedule import Planned, Trained, train_all
from orthocore.workers import Workers

ATTACKER_SEED = 1000  # attacker seeds are 1000 and above: far from the seeds a defender's study uses
REFERENCE_KEY = "K"  # the reference's key among the attacker's runs


@dataclasses.dataclass(frozen=True)
class Surrogates:
    """Checkpoint paths of the trained surrogates, by kind (each list may be empty)."""

    ordinary: list[str]
    adaptive: list[str]
    adaptive_without_k: list[str]


def _placed(config: TrainConfig, folder: Path) -> TrainConfig:
    """``config`` set to train in ``folder/<digest of its configuration>``."""
    return dataclasses.replace(config, out=str(folder / config.result_key()))


def surrogate_plans(
    method: TrainConfig,
    reference: Hashable,
    out: str | Path,
    *,
    ordinary: int,
    adaptive: int,
    adaptive_without_k: int,
    seed: int = ATTACKER_SEED,
    key: tuple = (),
) -> list[Planned]:
    """The attacker's training runs, for :func:`orthocore.train.schedule.train_all`.

    Run keys are ``(*key, kind, index)`` with kind ``"ordinary"`` (the blind attacker's
    own model is ordinary number ``ordinary``), ``"adaptive"`` or ``"adaptive without K"``.
    Arguments as in :func:`train_surrogates`; ``reference`` is the key of K's checkpoint.
    """
    for name, value in (("ordinary", ordinary), ("adaptive", adaptive), ("adaptive_without_k", adaptive_without_k)):
        check_number(value, name, low=0, integer=True)
    check_number(method.lam, "lam", low=0, low_open=True)
    check_number(seed, "seed", low=0, integer=True)
    out = Path(out)
    plain = dataclasses.replace(method, lam=0.0, references=[])

    def ordinary_run(index: int) -> Planned:
        config = _placed(dataclasses.replace(plain, seed=seed + index), out / f"ordinary-{index}")
        return Planned((*key, "ordinary", index), (), lambda _: config)

    def orthogonal_run(anchor: Hashable, index: int, kind: str) -> Planned:
        def config(paths: list[str]) -> TrainConfig:
            run = dataclasses.replace(method, references=paths, seed=seed + 100 + index)
            return _placed(run, out / f"{kind.replace(' ', '-').lower()}-{index}-{spec_digest(paths[0])}")

        return Planned((*key, kind, index), (anchor,), config)

    own = ordinary_run(ordinary)  # the blind attacker's own reference
    return [
        *(ordinary_run(i) for i in range(ordinary)),
        *([own] if adaptive_without_k else []),
        *(orthogonal_run(reference, i, "adaptive") for i in range(adaptive)),
        *(orthogonal_run(own.key, i, "adaptive without K") for i in range(adaptive_without_k)),
    ]


def surrogates_of(trained: Mapping[Hashable, Trained], ordinary: int, adaptive: int, adaptive_without_k: int,
                  key: tuple = ()) -> Surrogates:  # fmt: skip
    """The checkpoints of :func:`surrogate_plans`'s runs (with the same counts and ``key``) by kind."""
    return Surrogates(
        ordinary=[trained[(*key, "ordinary", i)].checkpoint for i in range(ordinary)],
        adaptive=[trained[(*key, "adaptive", i)].checkpoint for i in range(adaptive)],
        adaptive_without_k=[trained[(*key, "adaptive without K", i)].checkpoint for i in range(adaptive_without_k)],
    )


def train_surrogates(
    method: TrainConfig,
    reference: str,
    out: str | Path,
    *,
    ordinary: int,
    adaptive: int,
    adaptive_without_k: int,
    seed: int = ATTACKER_SEED,
    workers: Workers | None = None,
) -> Surrogates:
    """Trains (or reuses) the attacker's surrogates.

    Args:
        method: the defender's training configuration (architecture, data, λ, penalty,
            epochs, optimizer, ...); its ``seed``, ``references`` and ``out`` are replaced.
        reference: checkpoint of the public reference K.
        out: folder for the surrogates' runs.
        ordinary, adaptive, adaptive_without_k: how many of each kind
            (:meth:`orthocore.evaluate.settings.SurrogateSettings.surrogate_counts`).
        seed: the attacker's first seed: ordinary surrogate ``i`` uses ``seed + i``, the
            orthogonal ones ``seed + 100 + i`` (a defender must not use these seeds).
        workers: where the runs train, side by side (default: one after another here).

    Returns:
        The checkpoints by kind.
    """
    counts = {"ordinary": ordinary, "adaptive": adaptive, "adaptive_without_k": adaptive_without_k}
    plans = surrogate_plans(method, REFERENCE_KEY, out, seed=seed, **counts)
    trained = train_all(plans, workers or Workers(1), given={REFERENCE_KEY: reference})
    return surrogates_of(trained, **counts)


@dataclasses.dataclass(frozen=True)
class AttackerSources:
    """Transfer sources of a security evaluation by name, and which names are which kind
    of attacker (the arguments :func:`orthocore.evaluate.verdicts.security_verdicts` needs)."""

    sources: dict
    surrogates: list[str]
    adaptive: list[str]
    adaptive_without_k: list[str]


def attacker_sources(ordinary: dict, adaptive: list, adaptive_without_k: list) -> AttackerSources:
    """Names the attacker's models as transfer sources: ``surrogate <name>`` per ordinary
    surrogate (``ordinary``: name → model), ``adaptive #i``, ``adaptive without K #i``, and
    an ``... ensemble`` of each kind that has two or more models."""
    sources: dict = {}
    kinds: dict[str, list[str]] = {"surrogates": [], "adaptive": [], "adaptive_without_k": []}
    groups = (
        ("surrogates", "surrogate", [(f"surrogate {name}".strip(), model) for name, model in ordinary.items()]),
        ("adaptive", "adaptive", [(f"adaptive #{i}", model) for i, model in enumerate(adaptive)]),
        ("adaptive_without_k", "adaptive without K",
         [(f"adaptive without K #{i}", model) for i, model in enumerate(adaptive_without_k)]),
    )  # fmt: skip
    for kind, label, members in groups:
        for name, model in members:
            sources[name] = model
            kinds[kind].append(name)
        if len(members) > 1:
            sources[f"{label} ensemble"] = [model for _, model in members]
            kinds[kind].append(f"{label} ensemble")
    return AttackerSources(sources, **kinds)
