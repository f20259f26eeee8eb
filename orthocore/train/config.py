"""The configuration of a training run: one dataclass, saved beside its results.

:class:`TrainSettings` holds the options that every model of a run or study shares; it
is the one place a training option is declared, described and checked.
:class:`TrainConfig` adds what one run alone decides (its folder, λ, references, seed),
and :class:`orthocore.study.StudyConfig` builds on the same settings, so a new option
reaches the trainer, the study's TOML file and ``orthocore train``'s flags (generated
from the fields' metadata) at once.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import asdict, dataclass, fields

from orthocore import distributed, models
from orthocore.checks import (
    check_bool,
    check_choice,
    check_number,
    check_text,
    check_text_list,
)
from orthocore.data.folders import MAX_PIXELS
from orthocore.digests import fingerprint
from orthocore.model_specs import spec_digest
from orthocore.models.registry import INITS
from orthocore.settings import option
from orthocore.train.objective import PENALTIES

OPTIMIZERS = ("adam", "sgd")
# Defaults when neither the user nor a reference's recorded configuration says otherwise.
OPTIMIZER_DEFAULTS = {
    "adam": {"lr": 1e-3, "momentum": 0.0, "weight_decay": 0.0},
    "sgd": {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4},
}
CACHES = ("memory", "disk", "none")
AUTOCASTS = ("none", "bf16")
# Fields added after runs were first cached, with the default that reproduces the runs
# made before them: left out of result_key at that default (the penalty's own, also for
# λ = 0, where they change nothing).
_ADDED_LATER = {"penalty_batch": None, "autocast": "none", "cuda_graph": False}
_PENALTY_ONLY = ("penalty_batch",)


@dataclass
class TrainSettings:
    """The training options every model of a run shares.

    Attributes:
        arch: registry name of the model (:func:`orthocore.models.available`); None
            (default) takes the data's (:func:`orthocore.models.default_arch`).
        data: data set spec (:func:`orthocore.data.open_dataset`), default the digits.
        penalty: ``abs`` (default), ``square`` or ``signed``.
        penalty_batch: take the penalty on a random sub-batch of this many samples of
            each batch (its own forward and double backward) while the cross-entropy
            uses the whole batch; None (default) or a value ≥ ``batch_size`` takes it on
            the whole batch. See the README on the trade-off.
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
        autocast: ``bf16`` runs each step's forward, input gradient and double backward
            under bfloat16 autocast (δ itself accumulates in float32); ``none`` (default)
            in float32.
        cuda_graph: capture each full batch's whole step (forward, input gradient,
            penalty, double backward, optimizer update) as one CUDA graph and replay it
            (:mod:`orthocore.train.graphs`); a batch of another shape (an epoch's last,
            partial batch) takes the eager step. Needs a CUDA device and one process (no
            ``torchrun``); False (default) runs every step eagerly.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
    """

    arch: str = option(None, "model architecture (default: the data's: digits_cnn for digits, fmnist_cnn for "
                       "Fashion-MNIST and other IDX sets, resnet20 for CIFAR-10)", choices=models.available)
    data: str = option("digits", "data set: 'digits', fashion-mnist[:PATH], mnist:PATH, cifar10:PATH, folder:PATH or PATH")
    penalty: str = option("abs", "penalty on delta", choices=PENALTIES)
    penalty_batch: int | None = option(None, "penalty on a random sub-batch of this many samples (default: the whole batch)")
    max_epochs: int = option(100, "cap on epochs")
    eval_every: int = option(20, "epochs between validation checks; stop when accuracy stops improving")
    batch_size: int = option(128, "mini-batch size")
    optimizer: str | None = option(None, "default: the first reference's, else adam", choices=OPTIMIZERS)
    lr: float | None = option(None, "learning rate (default: the optimizer's source)")
    momentum: float | None = option(None, "SGD momentum (default: the optimizer's source)")
    weight_decay: float | None = option(None, "weight decay (default: the optimizer's source)")
    init: str = option("default", "weight initialisation", choices=INITS)
    weights: str | None = option(None, "ImageNet models: local pretrained torchvision state_dict")
    finetune: bool = option(False, "train only the re-initialised last FC layer")
    augment: bool = option(False, "CIFAR-10 random crop and flip")
    cache: str = option("memory", "where reference gradients are kept", choices=CACHES)
    autocast: str = option("none", "bf16: the training step under bfloat16 autocast", choices=AUTOCASTS)
    cuda_graph: bool = option(False, "replay each full batch's training step from one captured CUDA graph (CUDA only)")
    device: str = option("auto", "auto (CUDA when a GPU is visible), cpu, cuda or cuda:N")
    max_image_pixels: int = option(MAX_PIXELS, "image folders: the largest image (width x height) accepted")

    def __post_init__(self) -> None:
        if self.arch is None:  # the data's architecture, decided here so that every record names it
            self.arch = models.default_arch(self.data)

    def validate(self) -> None:
        """Raises ``ValueError`` naming the first bad field, before any work starts."""
        models.spec(self.arch)
        for name in ("data",) + (("weights",) if self.weights is not None else ()):
            check_text(getattr(self, name), name)
        check_choice(self.penalty, "penalty", PENALTIES)
        for name in ("max_epochs", "eval_every", "batch_size", "max_image_pixels"):
            check_number(getattr(self, name), name, low=1, integer=True)
        if self.penalty_batch is not None:
            check_number(self.penalty_batch, "penalty_batch", low=1, integer=True)
        if self.optimizer is not None:
            check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        if self.lr is not None:
            check_number(self.lr, "lr", low=0, low_open=True)
        for name in ("momentum", "weight_decay"):
            if getattr(self, name) is not None:
                check_number(getattr(self, name), name, low=0)
        check_choice(self.init, "init", INITS)
        check_bool(self.finetune, "finetune")
        check_bool(self.augment, "augment")
        check_choice(self.cache, "cache", CACHES)
        check_choice(self.autocast, "autocast", AUTOCASTS)
        check_bool(self.cuda_graph, "cuda_graph")
        check_text(self.device, "device", f"one of {', '.join(distributed.DEVICE_CHOICES)}")
        device = distributed.device(self.device)
        if self.cuda_graph and distributed.world().size > 1:
            raise ValueError("cuda_graph: a captured step cannot hold DistributedDataParallel's gradient reduction; "
                             "under torchrun leave cuda_graph off")  # fmt: skip
        if self.cuda_graph and device.type != "cuda":
            raise ValueError(f"cuda_graph: capturing the training step needs a CUDA device, got {device.type} "
                             f"(device={self.device!r}); leave cuda_graph off there")  # fmt: skip

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict):
        """The config from a dict of its fields (as saved by :meth:`to_dict`)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"config: unknown keys {unknown}; known keys are {sorted(known)}")
        return cls(**values)


@dataclass
class TrainConfig(TrainSettings):
    """Everything that decides a run's result: the shared :class:`TrainSettings` and

    Attributes:
        out: run folder (checkpoints, metrics, ``run.json``).
        lam: λ of Eq. 3; 0 is ordinary training. See :mod:`orthocore.train.objective`
            for guidance (digits CNN: 1–3).
        references: model specs of the frozen reference models (penalty averaged): orthocore
            checkpoints, or any model :mod:`orthocore.model_specs` reads.
        seed: seeds initialisation, data order, dropout and augmentation.
        progress: show a progress bar per epoch.
    """

    out: str = option("runs/orthocore", "run folder (checkpoints, metrics.jsonl, run.json)")
    lam: float = option(
        0.0, "weight of the orthogonality penalty; 0 = ordinary training (digits CNN: 1-3)",
        flag="--lambda", metavar="LAMBDA",
    )
    references: list[str] = option(list, "reference model: checkpoint or model spec (repeatable)", flag="--reference", metavar="MODEL")
    seed: int = option(0, "seeds initialisation, data order and augmentation")
    progress: bool = option(True, "show a progress bar per epoch")

    def validate(self) -> None:
        super().validate()
        check_text(self.out, "out", "a folder path")
        check_number(self.lam, "lam", low=0)
        check_text_list(self.references, "references", "a list of model specs")
        if self.lam > 0 and not self.references:
            raise ValueError("references: λ > 0 needs at least one reference checkpoint")
        check_number(self.seed, "seed", low=0, integer=True)
        check_bool(self.progress, "progress")

    def result_key(self) -> str:
        """A digest of what decides this run's result: every field but ``out`` and
        ``progress``, each reference by its content and a data folder by its resolved
        path — the same run spelled another way (relative or absolute paths, a copied
        reference) gets the same key. Cached runs are stored under it."""
        settings = {k: v for k, v in self.to_dict().items() if k not in ("out", "progress")}
        for name, default in _ADDED_LATER.items():  # at its default, a later field leaves earlier keys as they were
            if settings[name] == default or (self.lam == 0 and name in _PENALTY_ONLY):
                del settings[name]
        settings["references"] = [spec_digest(path) for path in self.references]
        kind, separator, folder = self.data.partition(":")
        if separator:
            settings["data"] = f"{kind}:{os.path.realpath(folder)}"
        return fingerprint(settings)

    def with_optimizer(self, reference_config: dict | None) -> TrainConfig:
        """A copy whose ``optimizer``, ``lr``, ``momentum`` and ``weight_decay`` left as None
        are filled: from ``reference_config`` (a reference's recorded config) when given,
        else the defaults."""
        source = reference_config or {}
        optimizer = self.optimizer or source.get("optimizer") or "adam"
        same = source.get("optimizer") == optimizer
        filled = {}
        for name in ("lr", "momentum", "weight_decay"):
            value = getattr(self, name)
            if value is None:
                value = source.get(name) if same else None
                value = value if value is not None else OPTIMIZER_DEFAULTS[optimizer][name]
            filled[name] = value
        return dataclasses.replace(self, optimizer=optimizer, **filled)


def settings_of(config: TrainSettings) -> dict:
    """The :class:`TrainSettings` fields of any config built on them (a study's, a run's)."""
    return {f.name: getattr(config, f.name) for f in fields(TrainSettings)}
