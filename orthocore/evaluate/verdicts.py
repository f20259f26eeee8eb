"""Verdicts on a defense, computed from security evaluations — never written by hand.

Each verdict compares a defended model with the ordinary baseline (the same architecture
trained without the penalty) on the fooling ratio averaged over the ε grid, once per
seed, and reads the range over seeds:

* **the paper's claim** — perturbations transferred from K and from independent
  look-alike surrogates fool the defended model less: *holds* when the defended model's
  transfer fooling is below the baseline's by more than ``margin`` points in every seed;
* **white-box** and **query** (Square) robustness — the defended model is no easier to
  fool than the baseline: *holds* when it is fooled at most ``margin`` points more in
  every seed, *does not hold* when it is fooled more than ``margin`` points more in every
  seed;
* **an attacker who knows K** (an adaptive surrogate trained orthogonal to K) and **an
  attacker who does not** (a surrogate orthogonal to the attacker's own model): the
  transfer protection survives when the adaptive transfer fools the defended model less
  than an independent surrogate's transfer fools the baseline, by more than ``margin``
  points in every seed; it is *broken* when the adaptive transfer fools the defended
  model at least as often (within ``margin``) in every seed;
* **secret references** — a defended model trained orthogonal to K *and* to private
  references of the defender's: the adaptive attacker who knows K only fools it less
  than the same attacker fools the orthogonal model trained against K alone, by more
  than ``margin`` points in every seed;
* **input-transformation defenses** (the ordinary model behind JPEG, TVM, ...) are held
  to what they claim: besides the transfer claim, that an attacker who knows the
  defense (white-box PGD through it with BPDA, and EOT where it is random) and a query
  attacker fool it *less* than the undefended model, by more than ``margin`` points in
  every seed (*holds*), or not (*does not hold*).

Seeds that disagree give *inconclusive*. A "fooled less" claim whose baseline is fooled
at most ``margin`` points in some seed, and whose defended model is not fooled clearly
more there, cannot show a difference (nothing is left to reduce): it reads *untestable*
rather than "does not hold" or "broken". A verdict whose
rows were not measured is left out rather than guessed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from orthocore.evaluate.security import REFERENCE, SQUARE, WHITE_BOX, SecurityResult, transfer_row

MARGIN = 5.0  # percentage points; smaller gaps are read as "no difference"


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One claim about a defended model, and what the measurements say of it.

    Attributes:
        claim: the claim, in words.
        target: the defended model.
        outcome: ``"holds"``, ``"does not hold"``, ``"broken by <attacker>"``,
            ``"inconclusive over seeds"`` or ``"untestable: the baseline is barely fooled"``.
        defended, baseline: the compared fooling ratios (%, mean over the ε grid), one per seed.
        evidence: the numbers in words: means with the min–max over seeds.
    """

    claim: str
    target: str
    outcome: str
    defended: tuple[float, ...]
    baseline: tuple[float, ...]
    evidence: str


def _mean_ratios(result: SecurityResult | Sequence[Mapping]) -> dict[tuple[str, str], float]:
    """(target, attack row) → fooling ratio (%) averaged over the ε grid, from a result
    or from its records (:meth:`SecurityResult.rows`, as stored in ``results.json``)."""
    records = result.rows() if isinstance(result, SecurityResult) else result
    per_eps: dict[tuple[str, str], list[float]] = {}
    for record in records:
        per_eps.setdefault((record["target"], record["attack"]), []).append(record["fooling_percent"])
    return {key: sum(values) / len(values) for key, values in per_eps.items()}


def _spread(values: Sequence[float]) -> str:
    mean = sum(values) / len(values)
    return f"{mean:.1f} % ({min(values):.1f}–{max(values):.1f} over {len(values)} seed{'s' * (len(values) > 1)})"


UNTESTABLE = "untestable: the baseline is barely fooled"


def _verdict(claim, target, defended, baseline, passes, *, yes="holds", no="does not hold",
             floor: float | None = None) -> Verdict:  # fmt: skip
    """``yes`` when ``passes(gap)`` in every seed, ``no`` when in none, else inconclusive;
    ``gap`` is the baseline's fooling ratio minus the defended model's (> 0: fooled less).
    With ``floor``, a seed whose baseline is at most ``floor`` and whose defended model is
    not fooled more than ``floor`` points above it makes the claim untestable: neither a
    reduction nor an increase could show there."""
    checks = [passes(b - d) for d, b in zip(defended, baseline)]
    outcome = yes if all(checks) else no if not any(checks) else "inconclusive over seeds"
    if floor is not None and any(b <= floor and d - b <= floor for d, b in zip(defended, baseline)):
        outcome = UNTESTABLE
    evidence = f"defended {_spread(defended)} vs baseline {_spread(baseline)}"
    return Verdict(claim, target, outcome, tuple(defended), tuple(baseline), evidence)


def security_verdicts(
    results: Sequence[SecurityResult | Sequence[Mapping]],
    *,
    baseline: str,
    defended: Sequence[str],
    surrogates: Sequence[str] = (),
    adaptive: Sequence[str] = (),
    adaptive_without_k: Sequence[str] = (),
    secret: Mapping[str, str] | None = None,
    transformed: Sequence[str] = (),
    margin: float = MARGIN,
) -> list[Verdict]:
    """The verdicts on every defended target, from one security evaluation per seed.

    Args:
        results: one :class:`SecurityResult` (or its :meth:`~SecurityResult.rows`) per
            seed, each with the same targets and sources.
        baseline: the ordinary model's target name.
        defended: the defended (orthogonal) models' target names.
        surrogates: names of independent ordinary surrogate sources (an ensemble counts).
        adaptive: names of sources trained orthogonal to K (an attacker who knows K).
        adaptive_without_k: names of sources trained orthogonal to the attacker's own
            ordinary model (an attacker who does not know K).
        secret: defended targets trained orthogonal to K and to private references →
            the defended target trained orthogonal to K alone (same λ) they are compared
            with against the attacker who knows K.
        transformed: targets that are the baseline behind an input-transformation
            defense.
        margin: percentage points below which two fooling ratios count as equal.

    Returns:
        Per defended (orthogonal) target: the paper's transfer claim, white-box, query,
        one verdict per adaptive source kind that was measured, and for a
        secret-reference target whether the secret helped. Per transformed target: the
        transfer claim, and whether white-box (through the defense) and query attacks
        fool it less than the undefended baseline.
    """
    if not results:
        raise ValueError("results: expected one security evaluation per seed, got none")
    secret = dict(secret or {})
    ratios = [_mean_ratios(result) for result in results]

    def per_seed(target: str, row: str) -> list[float]:
        return [seed[target, row] for seed in ratios]

    def worst_of(target: str, rows: Sequence[str]) -> list[float]:
        return [max(seed[target, row] for row in rows) for seed in ratios]

    verdicts = []
    transfer_rows = [transfer_row(REFERENCE), *(transfer_row(name) for name in surrogates)]
    surrogate_rows = [transfer_row(name) for name in surrogates] or [transfer_row(REFERENCE)]

    def fooled_less(gap: float) -> bool:
        return gap > margin

    def no_easier(gap: float) -> bool:  # fooled at most `margin` points more
        return gap >= -margin

    def transfer_claim(target: str) -> Verdict:
        return _verdict(
            "transfer from K and look-alike surrogates fools it less (the paper's claim)", target,
            worst_of(target, transfer_rows), worst_of(baseline, transfer_rows), fooled_less, floor=margin,
        )  # fmt: skip

    for target in defended:
        verdicts.append(transfer_claim(target))
        verdicts.append(_verdict("white-box PGD fools it no more than the ordinary model", target,
                                 per_seed(target, WHITE_BOX), per_seed(baseline, WHITE_BOX), no_easier))  # fmt: skip
        verdicts.append(_verdict("a query attack (Square) fools it no more than the ordinary model", target,
                                 per_seed(target, SQUARE), per_seed(baseline, SQUARE), no_easier))  # fmt: skip
        for kind, names in (("an attacker who knows K", adaptive), ("an attacker who does not know K", adaptive_without_k)):
            if names:
                verdicts.append(_verdict(
                    f"its transfer protection holds against {kind} (adaptive surrogate)", target,
                    worst_of(target, [transfer_row(name) for name in names]), worst_of(baseline, surrogate_rows),
                    fooled_less, no=f"broken by {kind}", floor=margin,
                ))  # fmt: skip
        if target in secret and adaptive:
            knows_k = [transfer_row(name) for name in adaptive]
            verdicts.append(_verdict(
                f"its secret references make it harder for an attacker who knows K than {secret[target]}", target,
                worst_of(target, knows_k), worst_of(secret[target], knows_k), fooled_less, floor=margin,
            ))  # fmt: skip
    for target in transformed:
        verdicts.append(transfer_claim(target))
        verdicts.append(_verdict(
            "white-box robustness through the defense: PGD through it (BPDA, EOT where random) fools it less than "
            "the undefended model", target, per_seed(target, WHITE_BOX), per_seed(baseline, WHITE_BOX), fooled_less,
            floor=margin,
        ))  # fmt: skip
        verdicts.append(_verdict("a query attack (Square) fools it less than the undefended model", target,
                                 per_seed(target, SQUARE), per_seed(baseline, SQUARE), fooled_less, floor=margin))
    return verdicts


def format_verdicts(verdicts: Sequence[Verdict]) -> str:
    """One line per verdict: target, claim, outcome and the numbers behind it."""
    return "\n".join(f"{v.target}: {v.claim}: {v.outcome.upper()} — {v.evidence}" for v in verdicts)
