"""The paper's whole study, stage by stage, once per seed, every stage cached and resumable.

Per study seed (:mod:`orthocore.study.seeds` gives every model its own seed):

1. **Models** — a reference K; an ordinary retrain (another seed); an independent
   surrogate (a third seed, never used as a reference: the attacker who guessed the
   architecture); one orthogonal model per λ, trained against K with the ordinary
   retrain's seed, so λ is the only difference between them (Algorithm 1). With
   ``secret_references = k``, also k private references of the defender's (trained
   orthogonal to K) and a **secret** model trained orthogonal to K and to them.
2. **Tables I/II** — test accuracy and δ (signed and |δ|) of each model against K.
3. **Figs. 5/6** — fooling ratio over the ε grid of each attack crafted on K and on the
   surrogate, on every model.
4. **Table III** — the ordinary retrain behind each defense at the paper's four settings
   vs the orthogonal models, perturbations crafted on K.
5. **Security evaluation** (beyond the paper) — see :func:`security_section`.

Every seed's models are trained first, side by side on the workers; then each seed's
attacks are queued behind the previous seed's without waiting for them, so that the
workers do not idle while a seed's last attacks finish, and the results are collected in
seed order. Then every table is summarised over the seeds (means and extremes), the security
verdicts are read over the seeds, and **Figs. 3/4** — Grad-CAM of the same images under
K and the orthogonal models, clean and adversarial images over the ε grid — are drawn
from the first seed's models.

Each model trains in its own folder named by a digest of its configuration: an
interrupted run (Ctrl-C, ``kill -9``) resumes its last epoch from the trainer's state,
and finished models are never trained again. Stage results are stored per seed with the
digest of their settings and of the model files they read
(:mod:`orthocore.study.cache`), so a re-run with nothing changed only rebuilds the report.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

from torch import nn

from orthocore import distributed
from orthocore._io import atomic_write_json, move_aside
from orthocore.checkpoint import load_model
from orthocore.data import open_dataset
from orthocore.defenses import paper_variants
from orthocore.digests import file_digest, fingerprint
from orthocore.evaluate.batches import DRAWS
from orthocore.evaluate.defenses import defense_evaluation
from orthocore.evaluate.panels import first_images, write_panels
from orthocore.evaluate.security import defended_name, start_security_evaluation, with_defenses
from orthocore.evaluate.settings import (
    DefenseConfig,
    DefenseSettings,
    SecurityConfig,
    SecuritySettings,
    TransferConfig,
    TransferSettings,
    fields_of,
)
from orthocore.evaluate.similarity import similarity_row
from orthocore.evaluate.surrogates import ATTACKER_SEED, attacker_sources, surrogate_plans, train_surrogates
from orthocore.evaluate.transfer import transfer_evaluation
from orthocore.evaluate.verdicts import security_verdicts
from orthocore.locks import output_lock
from orthocore.progress import progress as progress_report
from orthocore.report import RESULTS_FORMAT, write_report
from orthocore.runtime import versions
from orthocore.study.cache import StageCache
from orthocore.study.config import StudyConfig
from orthocore.study.seeds import model_seed, summarize, summarize_table
from orthocore.train import TrainConfig, ensure_trained
from orthocore.train.config import settings_of
from orthocore.train.schedule import Planned, Trained, train_all
from orthocore.workers import Workers, worker_count

PRIVATE_OFFSET = 10  # the defender's private references use model seeds from here (see model_seed)


@dataclasses.dataclass
class StudyModel:
    """One trained model of the study."""

    name: str
    role: str  # reference | ordinary | surrogate | orthogonal | private | secret
    lam: float
    folder: Path
    model: nn.Module
    train_seconds: float | None  # None when the timing record is missing

    @property
    def checkpoint(self) -> Path:
        return self.folder / "model.ckpt"


@dataclasses.dataclass(frozen=True)
class _Planned:
    """A model to train: its name, role, λ, seed and the names of the study's models it
    is trained orthogonal to."""

    name: str
    role: str
    lam: float
    seed: int
    references: tuple[str, ...] = ()


def _roster(config: StudyConfig, seed: int) -> list[_Planned]:
    """Every model of study seed ``seed``, each after the models it is trained against."""
    plan = [
        _Planned("reference", "reference", 0.0, model_seed(seed, 0)),
        _Planned("ordinary", "ordinary", 0.0, model_seed(seed, 1)),
        _Planned("surrogate", "surrogate", 0.0, model_seed(seed, 2)),
    ]
    plan += [_Planned(f"orthogonal-λ{lam:g}", "orthogonal", lam, model_seed(seed, 1), ("reference",))
             for lam in config.lambdas]  # fmt: skip
    if config.secret_references:
        lam = max(config.lambdas)
        private = [_Planned(f"private-{i}", "private", lam, model_seed(seed, PRIVATE_OFFSET + i), ("reference",))
                   for i in range(config.secret_references)]  # fmt: skip
        plan += private
        plan.append(_Planned(secret_name(lam), "secret", lam, model_seed(seed, 1),
                             ("reference", *(p.name for p in private))))  # fmt: skip
    return plan


def secret_name(lam: float) -> str:
    """The name of the model trained orthogonal to K and to the private references."""
    return f"secret-λ{lam:g}"


def _model_config(config: StudyConfig, planned: _Planned, references: list[str], progress: bool) -> TrainConfig:
    """The training run of ``planned`` (``out``: its folder, named by its configuration)."""
    train_config = TrainConfig(**settings_of(config), lam=planned.lam, references=references, seed=planned.seed,
                               progress=progress)  # fmt: skip
    folder = Path(config.out) / "models" / f"{planned.name}-{train_config.result_key()}"
    return dataclasses.replace(train_config, out=str(folder))


def _timing_file(checkpoint: str | Path) -> Path:
    return Path(checkpoint).parent / "study_timing.json"


def _recorded_seconds(timing: Path) -> float | None:
    """The training time recorded in ``timing``; None when there is none, or when the
    file is damaged (moved aside by rank 0, with a warning: the time is then unknown)."""
    if not timing.is_file():
        return None
    try:
        return float(json.loads(timing.read_text())["train_seconds"])
    except (ValueError, KeyError, TypeError) as error:
        if distributed.world().main:
            move_aside(timing, f"does not hold a training time: {error}")
        return None


def _train_model(config: StudyConfig, planned: _Planned, references: list[str], progress) -> StudyModel:
    train_config = _model_config(config, planned, references, progress)
    folder = Path(train_config.out)
    start = time.perf_counter()
    if ensure_trained(train_config) and distributed.world().main:
        atomic_write_json(_timing_file(folder / "model.ckpt"), {"train_seconds": time.perf_counter() - start})
    distributed.barrier()  # the timing is on disk before anyone reads it
    seconds = _recorded_seconds(_timing_file(folder / "model.ckpt"))
    model = load_model(folder / "model.ckpt", map_location=distributed.device(config.device))
    return StudyModel(planned.name, planned.role, planned.lam, folder, model, seconds)


def train_models(config: StudyConfig, seed: int, progress: bool = True) -> list[StudyModel]:
    """Trains (or loads) every model of study seed ``seed``, the reference first."""
    trained: dict[str, StudyModel] = {}
    roster = _roster(config, seed)
    for planned in progress_report(roster, desc=f"models (seed {seed})", unit="model", enabled=progress):
        references = [str(trained[name].checkpoint) for name in planned.references]
        trained[planned.name] = _train_model(config, planned, references, progress)
    return list(trained.values())


def _attacker_method(config: StudyConfig, progress: bool) -> TrainConfig:
    """How the attacker of the security evaluation trains: the study's settings and largest λ
    (the references are each surrogate's own, set by :func:`surrogate_plans`)."""
    return TrainConfig(**settings_of(config), lam=max(config.lambdas), progress=progress)


def train_every_model(config: StudyConfig, workers: Workers, progress: bool) -> None:
    """Trains (or finds trained) every model of every seed, the study's and the security
    evaluation's surrogates, as many at once as there are workers
    (:func:`orthocore.train.schedule.train_all`); the stages then load them."""
    quiet = workers.count > 1  # the workers' progress bars would overwrite each other
    plans, study_models = [], set()
    for seed in config.seeds:
        for planned in _roster(config, seed):
            def build(references, planned=planned):
                return _model_config(config, planned, references, progress and not quiet)

            plans.append(Planned((seed, planned.name), tuple((seed, name) for name in planned.references), build))
            study_models.add((seed, planned.name))
        if config.security:
            method = _attacker_method(config, progress and not quiet)
            plans += surrogate_plans(method, (seed, "reference"), Path(config.out) / "surrogates",
                                     seed=model_seed(seed, ATTACKER_SEED), key=(seed,),
                                     **config.surrogate_counts())  # fmt: skip
    with progress_report(total=len(plans), desc="models", unit="model", enabled=progress and quiet) as bar:
        def done(key, trained: Trained) -> None:
            if key in study_models and trained.seconds is not None and distributed.world().main:
                atomic_write_json(_timing_file(trained.checkpoint), {"train_seconds": trained.seconds})
            bar.update()

        train_all(plans, workers, on_done=done)
    distributed.barrier()


def similarity_table(models: list[StudyModel], test_set, device, cache: StageCache) -> list[dict]:
    """Tables I/II rows (:mod:`orthocore.evaluate.similarity`): test accuracy of every
    model and δ of every model against the reference."""
    reference = models[0]
    key = fingerprint("similarity", [file_digest(m.checkpoint) for m in models])
    cached = cache.get("similarity", key)
    if cached is not None:
        return cached
    rows = [{"name": m.name, "role": m.role, "lambda": m.lam, "train_seconds": m.train_seconds,
             **similarity_row(m.model, reference.model, test_set, device).record()} for m in models]  # fmt: skip
    return cache.put("similarity", key, rows)


def transfer_rows(config: StudyConfig, seed: int, models: list[StudyModel], test_set, device, cache, progress,
                  workers: Workers) -> Callable[[], list[dict]]:  # fmt: skip
    """Figs. 5/6 rows: attacks crafted on the reference and on the surrogate, on every
    model but the defender's private references. The attacks start on ``workers``; the
    returned function waits for them and gives the rows."""
    transfer_config = TransferConfig(**fields_of(config, TransferSettings), seed=seed)
    parts = []
    sources = [m for m in models if m.role in ("reference", "surrogate")]
    for source in sources:
        targets = {m.name: m.model for m in models if m is not source and m.role != "private"}
        key = fingerprint("transfer", dataclasses.asdict(transfer_config), source.name,
                          [file_digest(m.checkpoint) for m in models], DRAWS)  # fmt: skip
        stage = f"transfer-{source.name}"
        cached = cache.get(stage, key)
        job = None if cached is not None else workers.submit(
            transfer_evaluation, source.model, targets, test_set, transfer_config, source_name=source.name,
            device=device)  # fmt: skip
        parts.append((source, stage, key, cached, job))

    def rows() -> list[dict]:
        found = []
        for source, stage, key, cached, job in progress_report(parts, desc=f"transfer attacks (seed {seed})",
                                                               unit="source", enabled=progress):  # fmt: skip
            if cached is None:
                cached = cache.put(stage, key, [
                    {"source": source.name, "target": r.model, "attack": r.attack, "eps": r.eps,
                     "fooling_percent": r.fooling_percent, "n": r.total} for r in job.result().rows
                ])  # fmt: skip
            found += cached
        return found

    return rows


def defense_rows(config: StudyConfig, seed: int, models: list[StudyModel], test_set, device, cache, progress,
                 workers: Workers) -> Callable[[], list[dict]]:  # fmt: skip
    """Table III rows: the ordinary retrain behind every defense variant vs the orthogonal
    models, perturbations crafted on the reference. The evaluation starts on ``workers``;
    the returned function waits for it and gives the rows."""
    reference = models[0]
    ordinary = next(m for m in models if m.role == "ordinary")
    orthogonal = {m.name: m.model for m in models if m.role == "orthogonal"}
    variants = paper_variants()
    defense_config = DefenseConfig(**fields_of(config, DefenseSettings), seed=seed)
    key = fingerprint("defenses", dataclasses.asdict(defense_config), list(variants),
                      [file_digest(m.checkpoint) for m in models], DRAWS)  # fmt: skip
    cached = cache.get("defenses", key)
    if cached is not None:
        return lambda: cached
    job = workers.submit(defense_evaluation, reference.model, ordinary.model, variants, orthogonal, test_set,
                         defense_config, target_name=ordinary.name, device=device)  # fmt: skip

    def rows() -> list[dict]:
        with progress_report(total=1, desc=f"defenses (Table III, seed {seed})", enabled=progress) as bar:
            found = job.result()
            bar.update()
        return cache.put("defenses", key, [dataclasses.asdict(r) for r in found])

    return rows


def security_section(config: StudyConfig, seed: int, models: list[StudyModel], test_set, device, cache, progress,
                     workers: Workers) -> Callable[[], dict]:  # fmt: skip
    """The security evaluation (beyond the paper) of the ordinary, orthogonal and
    secret-reference models for one study seed: white-box, Square, transfer from K, from
    independent surrogates (the study's and ``surrogates`` more, and their ensemble)
    and from adaptive surrogates (trained here with the study's largest λ, orthogonal to
    K and to an attacker's own model, from the seed's attacker seeds), worst cases and
    diagnostics. Its attacks start on ``workers``; the returned function waits for them
    and gives the seed's record. The verdicts are read over all seeds by
    :func:`run_study`."""
    reference = models[0]
    surrogate = next(m for m in models if m.role == "surrogate")
    targets = {m.name: m.model for m in models if m.role in ("ordinary", "orthogonal", "secret")}
    targets = with_defenses(targets, "ordinary", config.security_defenses)
    method = _attacker_method(config, progress)
    trained = train_surrogates(method, str(reference.checkpoint), Path(config.out) / "surrogates",
                               seed=model_seed(seed, ATTACKER_SEED), **config.surrogate_counts())  # fmt: skip
    settings = SecurityConfig(**fields_of(config, SecuritySettings), seed=seed)
    checkpoints = [m.checkpoint for m in models]
    checkpoints += [*trained.ordinary, *trained.adaptive, *trained.adaptive_without_k]
    key = fingerprint("security", dataclasses.asdict(settings), [file_digest(p) for p in checkpoints], DRAWS)
    cached = cache.get("security", key)
    if cached is not None:
        return lambda: cached
    load = lambda path: load_model(path, map_location=device)  # noqa: E731
    independent = {"": surrogate.model, **{f"#{i + 1}": load(p) for i, p in enumerate(trained.ordinary)}}
    attackers = attacker_sources(independent, [load(p) for p in trained.adaptive],
                                 [load(p) for p in trained.adaptive_without_k])  # fmt: skip
    evaluation = start_security_evaluation(targets, reference.model, test_set, settings, sources=attackers.sources,
                                           device=device, workers=workers, progress=progress)  # fmt: skip

    def record() -> dict:
        result = evaluation()
        return cache.put("security", key, {
            "eps": list(result.eps), "images": result.metadata["images"], "rows": result.rows(),
            "diagnostics": result.diagnostics, "white_box": result.metadata["white_box"],
            "adaptive_lambda": method.lam,
            "attackers": {"surrogates": attackers.surrogates, "adaptive": attackers.adaptive,
                          "adaptive_without_k": attackers.adaptive_without_k},
        })  # fmt: skip

    return record


def security_summary(per_seed: list[dict], models: list[StudyModel], config: StudyConfig) -> dict:
    """The security evaluations of every seed summarised (means, extremes), with the
    verdicts read over the seeds."""
    rows = summarize_table([seed["rows"] for seed in per_seed], ("target", "attack", "eps"))
    summary = summarize([{k: v for k, v in seed.items() if k != "rows"} for seed in per_seed]) | {"rows": rows}
    lam = summary["adaptive_lambda"]
    secret = {m.name: f"orthogonal-λ{lam:g}" for m in models if m.role == "secret"}
    verdicts = security_verdicts([seed["rows"] for seed in per_seed], baseline="ordinary",
                                 defended=[m.name for m in models if m.role in ("orthogonal", "secret")],
                                 secret=secret, transformed=[defended_name("ordinary", label)
                                                             for label in config.security_defenses],
                                 **summary["attackers"])  # fmt: skip
    return summary | {"verdicts": [dataclasses.asdict(v) for v in verdicts]}


def panels(config: StudyConfig, seed: int, models: list[StudyModel], test_set, device, run_dir: Path) -> dict:
    """Figs. 3/4 data of study seed ``seed`` (:mod:`orthocore.evaluate.panels`): Grad-CAM
    of the reference, ordinary and orthogonal models, and the attacks crafted on the
    reference over the ε grid, saved to ``panels.npz``."""
    images, labels = first_images(test_set, config.gradcam_images)
    shown = {m.name: m.model for m in models if m.role in ("reference", "ordinary", "orthogonal")}
    return write_panels(run_dir / "panels.npz", shown, models[0].model, images.to(device), labels.to(device),
                        config.attacks, config.eps, seed)  # fmt: skip


def start_seed(config: StudyConfig, seed: int, test_set, device, progress: bool, timings: dict,
               workers: Workers) -> Callable[[], dict]:  # fmt: skip
    """Study seed ``seed``: its models loaded (trained by :func:`train_every_model`), its
    transfer, defense and security attacks started on ``workers`` and Tables I/II
    computed now; adds the seconds of loading the models and of Tables I/II to
    ``timings``. The returned function waits for the attacks, so that the next seed's
    attacks can be queued behind this one's before the workers run out of this seed's
    work.

    Returns:
        A function giving ``seed``, the trained ``models`` (:class:`StudyModel`) and the
        stages' records: ``similarity``, ``transfer``, ``defenses`` (empty when off) and
        ``security`` (None when off).
    """
    cache = StageCache(config.out, f"seed-{seed}")

    def timed(stage, run):
        start = time.perf_counter()
        value = run()
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start
        return value

    models = timed("models", lambda: train_models(config, seed, progress))
    stage_args = (config, seed, models, test_set, device, cache, progress, workers)
    transfer = transfer_rows(*stage_args)
    defenses = defense_rows(*stage_args) if config.defenses else list
    security = security_section(*stage_args) if config.security else lambda: None
    # after the attacks are queued: the workers, idle since training ended, start on them
    similarity = timed("similarity", lambda: similarity_table(models, test_set, device, cache))

    def finish() -> dict:
        return {"seed": seed, "models": models, "similarity": similarity, "transfer": transfer(),
                "defenses": defenses(), "security": security()}  # fmt: skip

    return finish


def run_study(config: StudyConfig, *, progress: bool = True) -> dict:
    """Runs (or resumes) the whole study, once per seed, and writes ``results.json`` and
    the report.

    Args:
        config: the study; validated (and its data opened) before any training starts.
        progress: show progress bars.

    Returns:
        The results (the content of ``results.json``): every table summarised over the
        seeds (:mod:`orthocore.study.seeds`), and each seed's own under ``per_seed``.
    """
    config.validate()
    with distributed.held_on_main(lambda: output_lock(config.out)):
        return _run_study(config, progress)


def _run_study(config: StudyConfig, progress: bool) -> dict:
    """:func:`run_study` inside the folder's lock."""
    world = distributed.world()
    run_dir = Path(config.out)
    device = distributed.device(config.device)
    test_set = open_dataset(config.data, "test", max_pixels=config.max_image_pixels)  # what every table attacks
    # a bad folder fails here, before training; the sizes go into the report
    sizes = {split: len(open_dataset(config.data, split, max_pixels=config.max_image_pixels))
             for split in ("train", "val")} | {"test": len(test_set)}  # fmt: skip
    progress = progress and world.main
    if world.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / "study.json", config.to_dict())
    timings: dict[str, float] = {}
    with Workers(worker_count(config.workers, device)) as workers:
        start = time.perf_counter()
        train_every_model(config, workers, progress)
        timings["training"] = time.perf_counter() - start
        start = time.perf_counter()
        started = [start_seed(config, seed, test_set, device, progress, timings, workers) for seed in config.seeds]
        runs = [finish() for finish in started]
        # the wall time after training that the main process did not spend on models and Tables I/II
        timings["attacks"] = time.perf_counter() - start - timings["models"] - timings["similarity"]
    if not world.main:  # the others trained and attacked their shares; rank 0 writes the results
        return distributed.broadcast(None)

    start = time.perf_counter()
    panel_info = panels(config, config.seeds[0], runs[0]["models"], test_set, device, run_dir)
    timings["panels"] = time.perf_counter() - start

    tables = ("similarity", "transfer", "defenses")
    per_seed = [{"seed": run["seed"], **{name: run[name] for name in (*tables, "security")}} for run in runs]
    results = {
        "format": RESULTS_FORMAT,
        "title": f"orthocore study: {config.arch} on {config.data}",
        "seeds": list(config.seeds),
        "config": config.to_dict(),
        "versions": versions(),
        "timings": timings,
        "data": {"spec": config.data, "images": sizes},
        "notes": _notes(config, sizes),
        "models": summarize_table([run["similarity"] for run in runs], ("name",)),
        "transfer": summarize_table([run["transfer"] for run in runs], ("source", "target", "attack", "eps")),
        "defenses": summarize_table([run["defenses"] for run in runs], ("target", "defense", "attack", "eps")),
        "security": (security_summary([run["security"] for run in runs], runs[0]["models"], config)
                     if config.security else None),
        "panels": panel_info | {"seed": config.seeds[0]},
        "per_seed": per_seed,
    }
    atomic_write_json(run_dir / "results.json", results)
    write_report(run_dir)
    return distributed.broadcast(results)


def _notes(config: StudyConfig, sizes: dict[str, int]) -> list[str]:
    """The report's notes: what was run, on what, with which budgets."""
    seeds = ", ".join(map(str, config.seeds))
    eps = lambda values: ", ".join(f"{e:g}" for e in values)  # noqa: E731
    same = " (the same images: this data set has no test set of its own)" if config.data == "digits" else ""
    notes = [
        f"Data: {config.data}, {sizes['train']:,} training and {sizes['val']:,} validation images (a seeded split; "
        f"the validation images drive Algorithm 1's stopping rule) and {sizes['test']:,} test images{same}, from "
        f"which every table and attack samples its {config.n_images:,} images (among those every compared model "
        f"classifies correctly); architecture: {config.arch}. Every number above was measured in this run.",
        f"Training: at most {config.max_epochs} epochs, validation every {config.eval_every}, batches of "
        f"{config.batch_size}, {config.optimizer or 'adam'}"
        + (f", the penalty on {config.penalty_batch} rows of each batch" if config.penalty_batch else "")
        + f"; λ of the orthogonal models: {eps(config.lambdas)}.",
        f"ε (L∞, fractions of the [0, 1] range): Figs. 5/6 {eps(config.eps)}; Table III {eps(config.defense_eps)}"
        + (f"; security evaluation {eps(config.security_eps)}, white-box PGD {config.white_box_steps} steps × "
           f"{config.restarts} restart{'s' * (config.restarts != 1)}, Square {config.square_queries:,} queries, transfer PGD "
           f"{config.transfer_steps} steps" if config.security else "") + ".",
        f"Seeds {seeds}: each seed trains its own models and draws its own sample of images and attacks; "
        "every number is the mean over the seeds, with the min–max in brackets where they differ, and a "
        "verdict holds only when it holds in every seed." if len(config.seeds) > 1 else
        f"One seed ({seeds}): the numbers carry no spread over seeds; set `seeds` to several to measure it.",
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
