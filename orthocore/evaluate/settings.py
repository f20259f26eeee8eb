"""What each evaluation runs, declared once: the transfer protocol (Figs. 5/6), Table III,
the security evaluation and the attacker's surrogates, one settings dataclass each.

Every field carries its default and help (:func:`orthocore.settings.option`): the flags of
``orthocore attack``, ``defend``, ``security`` and ``run`` are generated from them, and
:class:`orthocore.study.StudyConfig` is built on all four (so a study's TOML keys are
these field names). The ``*Config`` classes add what one run alone decides, its seed,
and are checked on construction.
"""

from __future__ import annotations

import dataclasses

import torch

from orthocore.attacks import ATTACKS, PAPER_ATTACKS, attack_names
from orthocore.checks import check_bool, check_choice, check_number_list, check_text_list
from orthocore.defenses import STRONGEST, variants
from orthocore.settings import check_bounds, eps_grid, name_list, option


def default_eps_grid() -> tuple[float, ...]:
    """The paper's ε grid: 16 values from 0.5 % to 8 % of the range."""
    return tuple(torch.linspace(0.005, 0.08, 16, dtype=torch.float64).tolist())


@dataclasses.dataclass
class SampleSettings:
    """The images an evaluation attacks.

    Attributes:
        n_images: a seeded sample of the test images every compared model classifies
            correctly, at most this many.
        attack_batch: clean images per attack batch (each becomes one row per ε).
    """

    n_images: int = option(1000, "images evaluated: a seeded sample of those every compared model classifies "
                           "correctly", low=1)  # fmt: skip
    attack_batch: int = option(128, "clean images per attack batch", flag="--batch-size", low=1)

    def check_sample(self) -> None:
        """Raises ``ValueError`` naming the first bad field."""
        check_bounds(self, SampleSettings)


@dataclasses.dataclass
class AttackChoice:
    """The paper's attacks an evaluation crafts (keys of :data:`orthocore.attacks.ATTACKS`)."""

    attacks: tuple[str, ...] = option(PAPER_ATTACKS, f"comma-separated, from {','.join(ATTACKS)}",
                                      parse=name_list(attack_names))  # fmt: skip

    def check_attacks(self) -> None:
        self.attacks = attack_names(self.attacks)


@dataclasses.dataclass
class TransferSettings(SampleSettings, AttackChoice):
    """The transfer protocol of Figs. 5/6 (:mod:`orthocore.evaluate.transfer`).

    Attributes:
        eps: the ε grid (fractions of the [0, 1] range).
    """

    eps: tuple[float, ...] = option(default_eps_grid, "the ε grid: start:stop:count or a comma list, fractions of "
                                    "[0, 1] (the paper's: 16 values, 0.5 % to 8 %)", parse=eps_grid)  # fmt: skip

    def check_transfer(self) -> None:
        self.check_sample()
        self.check_attacks()
        self.eps = check_number_list(self.eps, "eps", low=0, high=1)


@dataclasses.dataclass
class DefenseSettings(SampleSettings, AttackChoice):
    """Table III (:mod:`orthocore.evaluate.defenses`).

    Attributes:
        defense_eps: the ε of Table III's columns (the paper's ε₁/ε₂).
    """

    defense_eps: tuple[float, ...] = option((0.03, 0.05), "the ε of Table III (the paper's 3 % and 5 %)",
                                            flag="--eps", parse=eps_grid)  # fmt: skip

    def check_defense(self) -> None:
        self.check_sample()
        self.check_attacks()
        self.defense_eps = check_number_list(self.defense_eps, "defense_eps", low=0, high=1)


@dataclasses.dataclass
class AttackBudget:
    """How hard the security evaluation's attackers try.

    Attributes:
        white_box_steps, restarts: the white-box PGD (DVERGE: 50 steps, 5 restarts; TRS:
            50 steps, 3 restarts). Step size 2.5·ε/steps.
        short_steps: the shorter white-box PGD of the convergence check.
        square_queries: Square Attack's budget per image.
        transfer_steps: steps of the PGD crafted on each transfer source.
        eot_samples: draws of a randomized defense each white-box gradient averages
            (EOT; AutoAttack's setting for randomized models, 20).
        monotone: the white-box and Square attacks sweep the ε grid in increasing order,
            an image fooled at a smaller ε counted fooled at the larger ones (the
            evaluation reports worst cases; :mod:`orthocore.attacks._loop`). Not for a
            randomized target, whose "fooled" is a draw's. False attacks each ε on its own.
    """

    white_box_steps: int = option(100, "steps of the white-box PGD", low=1)
    restarts: int = option(3, "random starts of the white-box PGD", low=1)
    short_steps: int = option(10, "steps of the shorter white-box PGD (the convergence check)", low=1)
    square_queries: int = option(1000, "Square Attack's queries per image", low=2)  # the clean check and one try
    transfer_steps: int = option(10, "steps of the PGD crafted on each transfer source", low=1)
    eot_samples: int = option(20, "draws of a randomized defense each white-box gradient averages (EOT)", low=1)
    monotone: bool = option(True, "white-box and Square as worst-case sweeps over the ε grid (the flag attacks "
                            "each ε on its own instead)", flag="--independent-eps")  # fmt: skip

    def check_budget(self) -> None:
        """Raises ``ValueError`` naming the first bad budget."""
        check_bounds(self, AttackBudget)
        check_bool(self.monotone, "monotone")


@dataclasses.dataclass
class SecuritySettings(SampleSettings, AttackBudget):
    """The security evaluation (:mod:`orthocore.evaluate.security`).

    Attributes:
        security_eps: its ε grid.
        security_defenses: the input-transformation defenses (labels of
            :func:`orthocore.defenses.variants`) whose front of the ordinary baseline is
            attacked too (:func:`orthocore.evaluate.security.with_defenses`): by default
            each of Table III's at its strongest setting
            (:data:`orthocore.defenses.STRONGEST`). Guo et al.'s randomized TVM
            (``"TVM-Weight=0.03, keep=0.5"``) is left out by default for its cost: its
            white-box attack averages 20 draws of 200 TV iterations per step, about 30x
            the step through the other defenses (docs/security.md).
    """

    security_eps: tuple[float, ...] = option((0.01, 0.03, 0.05, 0.08), "the security evaluation's ε grid",
                                             flag="--eps", parse=eps_grid)  # fmt: skip
    security_defenses: list[str] = option(lambda: list(STRONGEST), "also attack the baseline behind this "
                                          "input-transformation defense, white-box through BPDA (and EOT where random): "
                                          "a label of orthocore.defenses.variants(), such as 'JPEG-Quality=80' or "
                                          "'TVM-Weight=0.03, keep=0.5'; repeatable, given it replaces the default list",
                                          flag="--defense", metavar="LABEL")  # fmt: skip

    def check_security(self) -> None:
        self.check_sample()
        self.check_budget()
        self.security_eps = check_number_list(self.security_eps, "security_eps", low=0, high=1, low_open=True)
        known = variants()
        for label in check_text_list(self.security_defenses, "security_defenses", "a list of defense labels"):
            check_choice(label, "security_defenses", known)


@dataclasses.dataclass
class SurrogateSettings:
    """The attacker's models of the security evaluation (:mod:`orthocore.evaluate.surrogates`),
    trained with the defender's own method.

    Attributes:
        surrogates: independent ordinary surrogates the attacker trains (a study adds its
            own surrogate to them; two or more make an ensemble too).
        adaptive: surrogates trained orthogonal to K (the attacker who knows K).
        adaptive_without_k: surrogates trained orthogonal to the attacker's own model.
    """

    # At most 100 models of a kind: each kind draws from a block of 100 model seeds.
    surrogates: int = option(2, "independent surrogates the attacker trains", flag="--train-surrogates", low=0,
                             high=100)  # fmt: skip
    adaptive: int = option(2, "surrogates the attacker trains orthogonal to K", low=0, high=100)
    adaptive_without_k: int = option(1, "surrogates the attacker trains orthogonal to its own model", low=0, high=100)

    def check_surrogates(self) -> None:
        check_bounds(self, SurrogateSettings)

    def surrogate_counts(self) -> dict[str, int]:
        """The counts as :func:`orthocore.evaluate.surrogates.train_surrogates` takes them."""
        return {"ordinary": self.surrogates, "adaptive": self.adaptive, "adaptive_without_k": self.adaptive_without_k}


@dataclasses.dataclass
class EvaluationSettings(SurrogateSettings, SecuritySettings, DefenseSettings, TransferSettings):
    """Every evaluation's settings together, as a study takes them
    (:class:`orthocore.study.StudyConfig` is built on these and the training settings)."""

    def check_evaluations(self) -> None:
        """Raises ``ValueError`` naming the first bad field."""
        self.check_transfer()
        self.check_defense()
        self.check_security()
        self.check_surrogates()


@dataclasses.dataclass
class _Seeded:
    seed: int = option(0, "seeds the sample and every attack's random draws", low=0)

    def check_seed(self) -> None:
        check_bounds(self, _Seeded)


@dataclasses.dataclass
class TransferConfig(TransferSettings, _Seeded):
    """One transfer evaluation: :class:`TransferSettings` and its seed; checked on construction."""

    def __post_init__(self) -> None:
        self.check_transfer()
        self.check_seed()


@dataclasses.dataclass
class DefenseConfig(DefenseSettings, _Seeded):
    """One Table III evaluation: :class:`DefenseSettings` and its seed; checked on construction."""

    def __post_init__(self) -> None:
        self.check_defense()
        self.check_seed()


@dataclasses.dataclass
class SecurityConfig(SecuritySettings, _Seeded):
    """One security evaluation: :class:`SecuritySettings` and its seed; checked on construction."""

    def __post_init__(self) -> None:
        self.check_security()
        self.check_seed()


def fields_of(config, settings_class) -> dict:
    """The fields of ``settings_class`` (a settings dataclass above) of any config built on it."""
    return {item.name: getattr(config, item.name) for item in dataclasses.fields(settings_class)}
