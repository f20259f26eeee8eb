"""The paper's whole study, stage by stage, every stage cached and resumable.

1. **Models** — a reference K; an ordinary retrain (another seed); an independent
   surrogate (a third seed, never used as a reference: the attacker who guessed the
   architecture); one orthogonal model per λ, trained against K with the ordinary
   retrain's seed, so λ is the only difference between them (Algorithm 1).
2. **Tables I/II** — validation accuracy and δ (signed and |δ|) of each model against K.
3. **Figs. 5/6** — fooling ratio over the ε grid of each attack crafted on K and on the
   surrogate, on every model.
4. **Table III** — the ordinary retrain behind each defense at the paper's four settings
   vs the orthogonal models, perturbations crafted on K.
5. **Figs. 3/4** — Grad-CAM of the same images under K and the orthogonal models; clean
   and adversarial images over the ε grid.

Each model trains in its own folder named by a digest of its configuration: an
interrupted run (Ctrl-C, ``kill -9``) resumes its last epoch from the trainer's state,
and finished models are never trained again. Stage results are stored with the digest of
their settings and of the model files they read (:mod:`orthocore.study.cache`), so a
re-run with nothing changed only rebuilds the report.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from orthocore import gradients
from orthocore._io import atomic_write_json
from orthocore.attacks import make_attack
from orthocore.checkpoint import load_model
from orthocore.data import open_dataset
from orthocore.defenses import paper_variants
from orthocore.digests import file_digest, fingerprint
from orthocore.evaluate.defenses import defense_evaluation
from orthocore.evaluate.security import SecurityConfig, budget_of, security_evaluation
from orthocore.evaluate.surrogates import attacker_sources, train_surrogates
from orthocore.evaluate.transfer import TransferConfig, transfer_evaluation
from orthocore.evaluate.verdicts import security_verdicts
from orthocore.gradcam import gradcam
from orthocore.metrics import accuracy
from orthocore.report import write_report
from orthocore.runtime import resolve_device, versions
from orthocore.study.cache import StageCache
from orthocore.study.config import StudyConfig
from orthocore.train import TrainConfig, train
from orthocore.train.config import settings_of


@dataclasses.dataclass
class StudyModel:
    """One trained model of the study."""

    name: str
    role: str  # reference | ordinary | surrogate | orthogonal
    lam: float
    folder: Path
    model: nn.Module
    train_seconds: float | None  # None when the timing record is missing

    @property
    def checkpoint(self) -> Path:
        return self.folder / "model.ckpt"


def _roster(config: StudyConfig) -> list[tuple[str, str, float, int]]:
    """(name, role, λ, seed) of every model, the reference first."""
    models = [
        ("reference", "reference", 0.0, config.seed),
        ("ordinary", "ordinary", 0.0, config.seed + 1),
        ("surrogate", "surrogate", 0.0, config.seed + 2),
    ]
    return models + [(f"orthogonal-λ{lam:g}", "orthogonal", lam, config.seed + 1) for lam in config.lambdas]


def _train_model(config: StudyConfig, name, role, lam, seed, references, progress) -> StudyModel:
    train_config = TrainConfig(**settings_of(config), lam=lam, references=references, seed=seed, progress=progress)
    settings = {k: v for k, v in train_config.to_dict().items() if k not in ("out", "progress")}
    folder = Path(config.out) / "models" / f"{name}-{fingerprint(settings)}"
    train_config = dataclasses.replace(train_config, out=str(folder))
    timing_file = folder / "study_timing.json"
    if not (folder / "model.ckpt").is_file():
        start = time.perf_counter()
        train(train_config, resume=(folder / "state.pt").is_file())
        atomic_write_json(timing_file, {"train_seconds": time.perf_counter() - start})
    seconds = json.loads(timing_file.read_text())["train_seconds"] if timing_file.is_file() else None
    model = load_model(folder / "model.ckpt", map_location=resolve_device(config.device))
    return StudyModel(name, role, lam, folder, model, seconds)


def train_models(config: StudyConfig, progress: bool = True) -> list[StudyModel]:
    """Trains (or loads) every model of the study, the reference first."""
    trained: list[StudyModel] = []
    roster = _roster(config)
    for name, role, lam, seed in tqdm(roster, desc="models", unit="model", disable=not progress):
        references = [str(trained[0].checkpoint)] if lam > 0 else []
        trained.append(_train_model(config, name, role, lam, seed, references, progress))
    return trained


def similarity_table(models: list[StudyModel], val_set, device, cache: StageCache) -> list[dict]:
    """Tables I/II rows: accuracy of every model and δ of every model against the reference."""
    reference = models[0]
    key = fingerprint("similarity", [file_digest(m.checkpoint) for m in models])
    cached = cache.get("similarity", key)
    if cached is not None:
        return cached
    rows = []
    for m in models:
        row = {"name": m.name, "role": m.role, "lambda": m.lam, "train_seconds": m.train_seconds,
               "val_accuracy": accuracy(m.model, val_set, device)}  # fmt: skip
        if m is not reference:
            s = gradients.similarity(reference.model, m.model, val_set, device=device)
            row["delta"] = {"signed_mean": s.mean, "signed_std": s.std, "abs_mean": s.abs_mean, "abs_std": s.abs_std}
        rows.append(row)
    return cache.put("similarity", key, rows)


def transfer_rows(config: StudyConfig, models: list[StudyModel], val_set, device, cache, progress) -> list[dict]:
    """Figs. 5/6 rows: attacks crafted on the reference and on the surrogate."""
    transfer_config = TransferConfig(
        attacks=tuple(config.attacks), eps=tuple(config.eps), n_images=config.n_images, seed=config.seed
    )
    rows = []
    sources = [m for m in models if m.role in ("reference", "surrogate")]
    for source in tqdm(sources, desc="transfer attacks", unit="source", disable=not progress):
        targets = {m.name: m.model for m in models if m is not source}
        key = fingerprint("transfer", dataclasses.asdict(transfer_config), source.name,
                          [file_digest(m.checkpoint) for m in models])  # fmt: skip
        cached = cache.get(f"transfer-{source.name}", key)
        if cached is None:
            table = transfer_evaluation(source.model, targets, val_set, transfer_config,
                                        source_name=source.name, device=device)  # fmt: skip
            cached = cache.put(
                f"transfer-{source.name}",
                key,
                [{"source": source.name, "target": r.model, "attack": r.attack, "eps": r.eps,
                  "fooling_ratio": r.fooling_ratio, "n": r.total} for r in table.rows],
            )  # fmt: skip
        rows += cached
    return rows


def defense_rows(config: StudyConfig, models: list[StudyModel], val_set, device, cache, progress) -> list[dict]:
    """Table III rows: the ordinary retrain behind every defense variant vs the orthogonal
    models, perturbations crafted on the reference."""
    reference = models[0]
    ordinary = next(m for m in models if m.role == "ordinary")
    orthogonal = {m.name: m.model for m in models if m.role == "orthogonal"}
    variants = paper_variants()
    key = fingerprint("defenses", config.attacks, config.defense_eps, config.n_images, config.seed, list(variants),
                      [file_digest(m.checkpoint) for m in models])  # fmt: skip
    cached = cache.get("defenses", key)
    if cached is not None:
        return cached
    with tqdm(total=1, desc="defenses (Table III)", disable=not progress) as bar:
        rows = defense_evaluation(
            reference.model, ordinary.model, variants, orthogonal, val_set, attacks=config.attacks,
            eps=config.defense_eps, n_images=config.n_images, seed=config.seed, target_name=ordinary.name,
            device=device,
        )  # fmt: skip
        bar.update()
    return cache.put("defenses", key, [dataclasses.asdict(r) for r in rows])


def security_section(config: StudyConfig, models: list[StudyModel], val_set, device, cache, progress) -> dict:
    """The security evaluation (beyond the paper) of the ordinary and orthogonal models:
    white-box, Square, transfer from K, from independent surrogates (the study's and
    ``surrogates − 1`` more, and their ensemble) and from adaptive surrogates (trained here, with the study's largest λ, orthogonal to K and to
    an attacker's own model), worst cases, diagnostics and the verdicts."""
    reference = models[0]
    surrogate = next(m for m in models if m.role == "surrogate")
    targets = {m.name: m.model for m in models if m.role in ("ordinary", "orthogonal")}
    method = TrainConfig(**settings_of(config), lam=max(config.lambdas), references=[str(reference.checkpoint)],
                         seed=config.seed + 1, progress=progress)  # fmt: skip
    with tqdm(total=2, desc="security evaluation", disable=not progress) as bar:
        trained = train_surrogates(method, str(reference.checkpoint), Path(config.out) / "surrogates",
                                   ordinary=config.surrogates - 1, adaptive=config.adaptive,
                                   adaptive_without_k=config.adaptive_without_k)  # fmt: skip
        bar.update()
        settings = SecurityConfig(eps=tuple(config.security_eps), n_images=config.n_images, seed=config.seed,
                                  **budget_of(config))  # fmt: skip
        checkpoints = [m.checkpoint for m in models]
        checkpoints += [*trained.ordinary, *trained.adaptive, *trained.adaptive_without_k]
        key = fingerprint("security", dataclasses.asdict(settings), [file_digest(p) for p in checkpoints])
        cached = cache.get("security", key)
        if cached is None:
            load = lambda path: load_model(path, map_location=device)  # noqa: E731
            independent = {"": surrogate.model, **{f"#{i + 1}": load(p) for i, p in enumerate(trained.ordinary)}}
            attackers = attacker_sources(independent, [load(p) for p in trained.adaptive],
                                         [load(p) for p in trained.adaptive_without_k])  # fmt: skip
            result = security_evaluation(targets, reference.model, val_set, settings, sources=attackers.sources,
                                         device=device)  # fmt: skip
            verdicts = security_verdicts([result], baseline="ordinary",
                                         defended=[m.name for m in models if m.role == "orthogonal"],
                                         surrogates=attackers.surrogates, adaptive=attackers.adaptive,
                                         adaptive_without_k=attackers.adaptive_without_k)  # fmt: skip
            cached = cache.put("security", key, {
                "eps": list(result.eps), "images": result.metadata["images"], "rows": result.rows(),
                "diagnostics": result.diagnostics, "verdicts": [dataclasses.asdict(v) for v in verdicts],
                "adaptive_lambda": method.lam,
            })  # fmt: skip
        bar.update()
    return cached


def _val_tensors(val_set, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    items = [val_set[i] for i in range(min(count, len(val_set)))]
    return torch.stack([x for x, _ in items]), torch.as_tensor([int(y) for _, y in items])


def panels(config: StudyConfig, models: list[StudyModel], val_set, device, run_dir: Path) -> dict:
    """Figs. 3/4 data: Grad-CAM maps and the perturbation panel, saved to ``panels.npz``."""
    reference = models[0]
    shown = [m for m in models if m.role in ("reference", "ordinary", "orthogonal")]
    images, labels = _val_tensors(val_set, config.gradcam_images)
    images, labels = images.to(device), labels.to(device)
    arrays = {"gradcam_images": images.cpu().numpy()}
    for i, m in enumerate(shown):
        arrays[f"gradcam_{i}"] = gradcam(m.model, images, labels).cpu().numpy()
    clean, label = images[:1], labels[:1]
    arrays["perturbation_clean"] = clean[0].cpu().numpy()
    for name in config.attacks:
        generator = torch.Generator().manual_seed(config.seed)
        adversarial = make_attack(name, reference.model, list(config.eps), generator=generator)(clean, label)
        arrays[f"perturbation_{name}"] = adversarial[:, 0].detach().cpu().numpy()  # (E, C, H, W)
    tmp = run_dir / "panels.tmp.npz"
    np.savez_compressed(tmp, **arrays)
    tmp.replace(run_dir / "panels.npz")
    return {
        "gradcam_models": [m.name for m in shown],
        "perturbation_attacks": list(config.attacks),
        "perturbation_eps": list(config.eps),
    }


def run_study(config: StudyConfig, *, progress: bool = True) -> dict:
    """Runs (or resumes) the whole study and writes ``results.json`` and the report.

    Args:
        config: the study; validated (and its data opened) before any training starts.
        progress: show progress bars.

    Returns:
        The results (the content of ``results.json``).
    """
    config.validate()
    run_dir = Path(config.out)
    device = resolve_device(config.device)
    val_set = open_dataset(config.data, "val")
    open_dataset(config.data, "train")  # a missing or malformed folder fails here, before training
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / "study.json", config.to_dict())
    cache = StageCache(run_dir)
    timings = {}

    start = time.perf_counter()
    models = train_models(config, progress)
    timings["models"] = time.perf_counter() - start

    start = time.perf_counter()
    table = similarity_table(models, val_set, device, cache)
    timings["similarity"] = time.perf_counter() - start

    start = time.perf_counter()
    transfer = transfer_rows(config, models, val_set, device, cache, progress)
    timings["transfer"] = time.perf_counter() - start

    defenses = []
    if config.defenses:
        start = time.perf_counter()
        defenses = defense_rows(config, models, val_set, device, cache, progress)
        timings["defenses"] = time.perf_counter() - start

    security = None
    if config.security:
        start = time.perf_counter()
        security = security_section(config, models, val_set, device, cache, progress)
        timings["security"] = time.perf_counter() - start

    start = time.perf_counter()
    panel_info = panels(config, models, val_set, device, run_dir)
    timings["panels"] = time.perf_counter() - start

    results = {
        "title": f"orthocore study: {config.arch} on {config.data}",
        "seed": config.seed,
        "config": config.to_dict(),
        "versions": versions(),
        "timings": timings,
        "notes": _notes(config),
        "models": table,
        "transfer": transfer,
        "defenses": defenses,
        "security": security,
        "panels": panel_info,
    }
    atomic_write_json(run_dir / "results.json", results)
    write_report(run_dir)
    return results


def _notes(config: StudyConfig) -> list[str]:
    notes = [
        f"Data: {config.data}; architecture: {config.arch}; every number above was measured in this run.",
        "Training times are wall-clock seconds of this run on this machine (a resumed model counts "
        "only the part after the resume); the paper's 22x training cost (Table II) is not compared.",
    ]
    if config.security:
        notes.append(
            "The verdicts above are the paper's transfer protocol only. The security evaluation below adds "
            "white-box, query (Square) and adaptive attackers; read its verdicts before calling a model robust."
        )
    if config.data == "digits":
        notes.append(
            "The digits (8×8 grey, 1,797 images) stand in for CIFAR-10/ImageNet: the method and "
            "protocol are the paper's, the scale is not. Point `data` at a CIFAR-10 folder to run it at scale."
        )
    return notes
