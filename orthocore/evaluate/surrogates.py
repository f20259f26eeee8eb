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
from pathlib import Path

from orthocore.checks import check_number
from orthocore.digests import file_digest
from orthocore.train import TrainConfig, ensure_trained

ATTACKER_SEED = 1000  # attacker seeds are 1000 and above: far from the seeds a defender's study uses


@dataclasses.dataclass(frozen=True)
class Surrogates:
    """Checkpoint paths of the trained surrogates, by kind (each list may be empty)."""

    ordinary: list[str]
    adaptive: list[str]
    adaptive_without_k: list[str]


def _trained(config: TrainConfig, folder: Path) -> str:
    """The checkpoint of ``config`` trained in ``folder/<digest>``: reused when finished,
    resumed when interrupted."""
    out = folder / config.result_key()
    ensure_trained(dataclasses.replace(config, out=str(out)))
    return str(out / "model.ckpt")


def train_surrogates(
    method: TrainConfig,
    reference: str,
    out: str | Path,
    *,
    ordinary: int = 0,
    adaptive: int = 1,
    adaptive_without_k: int = 1,
    seed: int = ATTACKER_SEED,
) -> Surrogates:
    """Trains (or reuses) the attacker's surrogates.

    Args:
        method: the defender's training configuration (architecture, data, λ, penalty,
            epochs, optimizer, ...); its ``seed``, ``references`` and ``out`` are replaced.
        reference: checkpoint of the public reference K.
        out: folder for the surrogates' runs.
        ordinary, adaptive, adaptive_without_k: how many of each kind.
        seed: the attacker's first seed: ordinary surrogate ``i`` uses ``seed + i``, the
            orthogonal ones ``seed + 100 + i`` (a defender must not use these seeds).

    Returns:
        The checkpoints by kind.
    """
    for name, value in (("ordinary", ordinary), ("adaptive", adaptive), ("adaptive_without_k", adaptive_without_k)):
        check_number(value, name, low=0, integer=True)
    check_number(method.lam, "lam", low=0, low_open=True)
    check_number(seed, "seed", low=0, integer=True)
    out = Path(out)
    plain = dataclasses.replace(method, lam=0.0, references=[])

    def ordinary_model(index: int) -> str:
        return _trained(dataclasses.replace(plain, seed=seed + index), out / f"ordinary-{index}")

    def orthogonal_to(anchor: str, index: int, kind: str) -> str:
        config = dataclasses.replace(method, references=[anchor], seed=seed + 100 + index)
        return _trained(config, out / f"{kind}-{index}-{file_digest(anchor)}")

    own = ordinary_model(ordinary) if adaptive_without_k else None  # the blind attacker's own reference
    return Surrogates(
        ordinary=[ordinary_model(i) for i in range(ordinary)],
        adaptive=[orthogonal_to(reference, i, "adaptive") for i in range(adaptive)],
        adaptive_without_k=[orthogonal_to(own, i, "adaptive-without-k") for i in range(adaptive_without_k)],
    )


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
