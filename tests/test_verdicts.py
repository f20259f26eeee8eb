"""Verdicts follow the numbers: constructed security results that must read "holds",
"does not hold", "broken" and "inconclusive"."""

import pytest
import torch

from orthocore.evaluate.security import SQUARE, WHITE_BOX, SecurityResult, transfer_row
from orthocore.evaluate.verdicts import UNTESTABLE, format_verdicts, security_verdicts

N = 200


def _result(ratios: dict[tuple[str, str], float]) -> SecurityResult:
    """A result whose every row fools the given percentage of N images at both ε."""
    fooled = {}
    for key, percent in ratios.items():
        mask = torch.zeros(2, N, dtype=torch.bool)
        mask[:, : round(percent * N / 100)] = True
        fooled[key] = mask
    return SecurityResult((0.05, 0.1), fooled, {}, {"images": N})


def _study(ortho: dict[str, float], ordinary: dict[str, float]) -> SecurityResult:
    rows = {"K": transfer_row("K"), "surrogate": transfer_row("surrogate"), "adaptive": transfer_row("adaptive"),
            "blind": transfer_row("blind"), "white-box": WHITE_BOX, "square": SQUARE}  # fmt: skip
    return _result({**{("ortho", rows[k]): v for k, v in ortho.items()},
                    **{("ordinary", rows[k]): v for k, v in ordinary.items()}})  # fmt: skip


def _verdicts(results):
    return security_verdicts(results, baseline="ordinary", defended=["ortho"], surrogates=["surrogate"],
                             adaptive=["adaptive"], adaptive_without_k=["blind"])  # fmt: skip


# The findings the security evaluation reported on the digits demo's models, as numbers.
BROKEN = dict(
    ortho={"K": 15, "surrogate": 20, "adaptive": 97, "blind": 90, "white-box": 85, "square": 70},
    ordinary={"K": 70, "surrogate": 85, "adaptive": 80, "blind": 80, "white-box": 30, "square": 23},
)
# A defense that would deserve its name: transfer drops, nothing else gets worse.
SOUND = dict(
    ortho={"K": 10, "surrogate": 12, "adaptive": 20, "blind": 15, "white-box": 31, "square": 24},
    ordinary={"K": 70, "surrogate": 85, "adaptive": 80, "blind": 80, "white-box": 30, "square": 23},
)


def test_the_reported_findings_read_as_broken():
    verdicts = _verdicts([_study(**BROKEN), _study(**BROKEN)])
    outcomes = {v.claim: v.outcome for v in verdicts}
    assert outcomes == {
        "transfer from K and look-alike surrogates fools it less (the paper's claim)": "holds",
        "white-box PGD fools it no more than the ordinary model": "does not hold",
        "a query attack (Square) fools it no more than the ordinary model": "does not hold",
        "its transfer protection holds against an attacker who knows K (adaptive surrogate)":
            "broken by an attacker who knows K",
        "its transfer protection holds against an attacker who does not know K (adaptive surrogate)":
            "broken by an attacker who does not know K",
    }  # fmt: skip
    paper = next(v for v in verdicts if "paper" in v.claim)
    assert paper.defended == (20.0, 20.0) and paper.baseline == (85.0, 85.0)  # the worst of K and the surrogate
    assert "20.0 % (20.0–20.0 over 2 seeds)" in paper.evidence


def test_a_sound_defense_reads_as_holding():
    verdicts = security_verdicts([_study(**SOUND)], baseline="ordinary", defended=["ortho"], surrogates=["surrogate"],
                                 adaptive=["adaptive"], adaptive_without_k=["blind"])  # fmt: skip
    assert {v.outcome for v in verdicts} == {"holds"}
    assert "HOLDS" in format_verdicts(verdicts)


def test_seeds_that_disagree_are_inconclusive_and_small_gaps_are_no_difference():
    mixed = [_study(**SOUND), _study(**BROKEN)]
    outcomes = {v.claim: v.outcome for v in _verdicts(mixed)}
    assert outcomes["white-box PGD fools it no more than the ordinary model"] == "inconclusive over seeds"
    near = dict(ortho={**SOUND["ortho"], "K": 66, "surrogate": 82}, ordinary=SOUND["ordinary"])
    outcome = next(v.outcome for v in _verdicts([_study(**near)]) if "paper" in v.claim)
    assert outcome == "does not hold"  # 3 points below the baseline is within the 5-point margin


def test_unmeasured_attackers_give_no_verdict_and_no_results_is_an_error():
    verdicts = security_verdicts([_study(**SOUND)], baseline="ordinary", defended=["ortho"], surrogates=["surrogate"])
    assert len(verdicts) == 3 and not any("attacker" in v.claim for v in verdicts)
    with pytest.raises(ValueError, match="one security evaluation per seed"):
        security_verdicts([], baseline="ordinary", defended=["ortho"])


def test_secret_references_are_read_against_the_plain_orthogonal_model():
    def study(secret_adaptive: float) -> SecurityResult:
        plain = _study(**BROKEN)
        extra = _result({("secret", transfer_row(row)): value for row, value in
                         (("K", 12), ("surrogate", 18), ("adaptive", secret_adaptive), ("blind", 20))}
                        | {("secret", WHITE_BOX): 80, ("secret", SQUARE): 70})  # fmt: skip
        return SecurityResult(plain.eps, plain.fooled | extra.fooled, {}, {"images": N})

    def secrecy(results):
        verdicts = security_verdicts(results, baseline="ordinary", defended=["ortho", "secret"],
                                     surrogates=["surrogate"], adaptive=["adaptive"], secret={"secret": "ortho"})
        (verdict,) = [v for v in verdicts if "secret references" in v.claim]
        return verdict

    helped = secrecy([study(40), study(45)])
    assert helped.target == "secret" and helped.outcome == "holds" and helped.baseline == (97.0, 97.0)
    assert secrecy([study(95), study(94)]).outcome == "does not hold"  # within 5 points of the plain model
    assert secrecy([study(40), study(95)]).outcome == "inconclusive over seeds"


def test_stored_rows_give_the_same_verdicts_as_the_result():
    results = [_study(**BROKEN), _study(**SOUND)]
    assert _verdicts([r.rows() for r in results]) == _verdicts(results)


def test_a_reduction_that_cannot_show_is_untestable_not_broken():
    """A baseline fooled at most 5 points leaves nothing to reduce: neither "holds" nor
    "broken" would be computed from evidence."""
    weak = dict(ortho={**BROKEN["ortho"], "K": 0, "surrogate": 0, "adaptive": 4},
                ordinary={**BROKEN["ordinary"], "K": 3, "surrogate": 4})  # fmt: skip
    outcomes = {v.claim: v.outcome for v in _verdicts([_study(**BROKEN), _study(**weak)])}
    assert outcomes["transfer from K and look-alike surrogates fools it less (the paper's claim)"] == UNTESTABLE
    assert outcomes["its transfer protection holds against an attacker who knows K (adaptive surrogate)"] == UNTESTABLE
    assert outcomes["white-box PGD fools it no more than the ordinary model"] == "does not hold"  # always testable
    just_above = dict(ortho={**BROKEN["ortho"], "K": 0, "surrogate": 0}, ordinary={**BROKEN["ordinary"], "K": 6, "surrogate": 6})
    paper = next(v for v in _verdicts([_study(**just_above)]) if "paper" in v.claim)
    assert paper.outcome == "holds"  # 6 points of baseline, all removed
    fooled_more = dict(ortho={**BROKEN["ortho"], "K": 30, "surrogate": 0}, ordinary={**BROKEN["ordinary"], "K": 0, "surrogate": 0})
    paper = next(v for v in _verdicts([_study(**fooled_more)]) if "paper" in v.claim)
    assert paper.outcome == "does not hold"  # a baseline at 0 % still shows a defended model fooled 30 % more


def _transformed(defended: dict[str, float], ordinary: dict[str, float]) -> SecurityResult:
    rows = {"K": transfer_row("K"), "surrogate": transfer_row("surrogate"), "white-box": WHITE_BOX, "square": SQUARE}
    return _result({**{("ordinary + JPEG", rows[k]): v for k, v in defended.items()},
                    **{("ordinary", rows[k]): v for k, v in ordinary.items()}})  # fmt: skip


@pytest.mark.parametrize(
    ("defended", "outcomes"),
    [
        # Athalye et al.'s finding: transfer is stopped, the attacker who knows the defense is not.
        ({"K": 20, "surrogate": 25, "white-box": 70, "square": 40}, ["holds", "does not hold", "does not hold"]),
        # a defense that would stop both
        ({"K": 20, "surrogate": 25, "white-box": 20, "square": 15}, ["holds", "holds", "holds"]),
    ],
)
def test_input_transformation_defenses_must_fool_less_than_the_undefended_model(defended, outcomes):
    ordinary = {"K": 70, "surrogate": 85, "white-box": 72, "square": 45}
    verdicts = security_verdicts([_transformed(defended, ordinary)] * 2, baseline="ordinary", defended=[],
                                 surrogates=["surrogate"], transformed=["ordinary + JPEG"])  # fmt: skip
    assert [v.target for v in verdicts] == ["ordinary + JPEG"] * 3
    assert [v.claim for v in verdicts][1:] == [
        "white-box robustness through the defense: PGD through it (BPDA, EOT where random) fools it less than "
        "the undefended model",
        "a query attack (Square) fools it less than the undefended model",
    ]
    assert [v.outcome for v in verdicts] == outcomes
