"""The configuration of a training run: one dataclass, saved beside its results."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from orthocore import models
from orthocore.train.objective import PENALTIES

OPTIMIZERS = ("adam", "sgd")
# Defaults when neither the user nor a reference's recorded configuration says otherwise.
OPTIMIZER_DEFAULTS = {
    "adam": {"lr": 1e-3, "momentum": 0.0, "weight_decay": 0.0},
    "sgd": {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4},
}
CACHES = ("memory", "disk", "none")


@dataclass
class TrainConfig:
    """Everything that decides a run's result.

    Attributes:
        arch: registry name of the model (:func:`orthocore.models.available`).
        data: data set spec (:func:`orthocore.data.open_dataset`), default the digits.
        out: run folder (checkpoints, metrics, ``run.json``).
        lam: λ of Eq. 3; 0 is ordinary training. See :mod:`orthocore.train.objective`
            for guidance (digits CNN: 1–3).
        penalty: ``abs`` (default), ``square`` or ``signed``.
        references: checkpoint files of the frozen reference models (penalty averaged).
        max_epochs: cap on epochs.
        eval_every: epochs between validation evaluations (Algorithm 1: 20).
        batch_size: mini-batch size b.
        optimizer: ``adam`` or ``sgd``; None takes the first reference's (the paper trains
            with the reference's optimizer), else ``adam``.
        lr, momentum, weight_decay: None takes the same source as ``optimizer``.
        init: ``default`` or ``xavier`` (the paper's).
        weights: ImageNet models: local pretrained state_dict.
        finetune: train only the re-initialised last fully-connected layer (the paper's
            ImageNet protocol).
        augment: CIFAR-10 random crop and flip (disables the reference-gradient cache).
        cache: reference gradients kept in ``memory``, on ``disk`` (in ``out``), or
            recomputed every batch (``none``).
        seed: seeds initialisation, data order, dropout and augmentation.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        progress: show a progress bar per epoch.
    """

    arch: str = "digits_cnn"
    data: str = "digits"
    out: str = "runs/orthocore"
    lam: float = 0.0
    penalty: str = "abs"
    references: list[str] = field(default_factory=list)
    max_epochs: int = 100
    eval_every: int = 20
    batch_size: int = 128
    optimizer: str | None = None
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float | None = None
    init: str = "default"
    weights: str | None = None
    finetune: bool = False
    augment: bool = False
    cache: str = "memory"
    seed: int = 0
    device: str = "auto"
    progress: bool = True

    def validate(self) -> None:
        """Raises ``ValueError`` naming the first bad field."""
        models.spec(self.arch)
        if not self.lam >= 0:
            raise ValueError(f"lam: expected λ >= 0, got {self.lam}")
        if self.penalty not in PENALTIES:
            raise ValueError(f"penalty: expected one of {', '.join(PENALTIES)}, got {self.penalty!r}")
        if self.lam > 0 and not self.references:
            raise ValueError("references: λ > 0 needs at least one reference checkpoint")
        if self.optimizer is not None and self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer: expected one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.cache not in CACHES:
            raise ValueError(f"cache: expected one of {CACHES}, got {self.cache!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device: expected auto, cpu or cuda, got {self.device!r}")
        for name in ("max_epochs", "eval_every", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {getattr(self, name)}")

    def resolve_optimizer(self, reference_config: dict | None) -> None:
        """Fills ``optimizer``, ``lr``, ``momentum`` and ``weight_decay`` left as None: from
        ``reference_config`` (a reference's recorded config) when given, else the defaults."""
        source = reference_config or {}
        if self.optimizer is None:
            self.optimizer = source.get("optimizer") or "adam"
        same = source.get("optimizer") == self.optimizer
        for name in ("lr", "momentum", "weight_decay"):
            if getattr(self, name) is None:
                value = source.get(name) if same else None
                setattr(self, name, value if value is not None else OPTIMIZER_DEFAULTS[self.optimizer][name])

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"config: unknown fields {sorted(unknown)}")
        return cls(**values)
