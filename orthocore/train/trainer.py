"""Algorithm 1: train a model whose input gradients are orthogonal to frozen references.

One loop serves ordinary (λ = 0) and orthogonal training. Each batch's loss is
CE + λ · mean penalty(δ) (:func:`orthocore.train.objective.orthogonal_loss`); the
parameter gradient runs through the input gradient (double backprop). Reference
gradients come from a per-sample cache when the data is not augmented.

BatchNorm: the model trains in train mode, so the forward that the loss sees (and whose
input gradient is made orthogonal) normalises with the batch's statistics; row i of that
gradient is ∇_{x_i} of the batch's summed loss (see :mod:`orthocore.gradients`), and the
running statistics are updated once per step, as in ordinary training. References run
in eval mode, so their gradients are per-sample and cacheable.

A run folder holds ``run.json`` (config, seed, versions), ``metrics.jsonl`` (one line
per epoch), ``state.pt`` (resume point, rewritten atomically after every epoch),
``best.ckpt`` (best validation accuracy) and ``model.ckpt`` (the final model), the last
two in :mod:`orthocore.checkpoint`'s format; ``state.pt`` and ``model.ckpt`` are sealed
with their digests (:mod:`orthocore._io`). The job holds the folder's lock
(:mod:`orthocore.locks`) while it trains, so a second job on the same folder is refused.

SIGTERM (:mod:`orthocore.interrupts`): after every optimizer step the processes agree
whether a stop was asked for (:func:`orthocore.distributed.stop_requested`); if so the
run writes ``state.pt`` with the epoch's ``partial`` progress — the steps done, the
epoch's running sums, the sub-batch generator's state and every process's random
state — and raises :class:`orthocore.interrupts.Interrupted`. A resume replays the rest
of the epoch from that point: the same remaining samples in the same order, the same
random draws, so the final weights equal an uninterrupted run's bit for bit (on another
number of processes the random draws of augmentation and dropout start afresh from the
step's seed instead).

Several processes (``torchrun``, :mod:`orthocore.distributed`): ``batch_size`` is the
global batch, each process takes ``batch_size / W`` of it (:mod:`orthocore.train.shards`)
and ``DistributedDataParallel`` averages the parameter gradients. DDP cannot reduce a
gradient of a gradient (its hooks fire once per parameter per backward), and
``torch.func`` cannot transform a DDP-wrapped module, so the whole step's loss is one
module, :class:`_StepObjective`: DDP wraps it, its forward takes the input gradient of
the *unwrapped* model with ``torch.func`` and builds CE + λ·penalty, and one ordinary
``backward()`` of that loss fires each parameter's hook once. The forward DDP sees is
therefore the one whose graph the backward uses, and the cross-entropy reaches every
trained parameter, so none goes unreduced (``find_unused_parameters`` stays off).
BatchNorm keeps per-process statistics (DDP's default; ``SyncBatchNorm`` has no
``torch.func`` support and no double backward): the gradient made orthogonal is then
that of the process's forward, row i being ∇_{x_i} of its share's summed loss, and the
running statistics are rank 0's (DDP broadcasts its buffers every forward). A model
without BatchNorm trains to the weights of the one-process run up to float rounding.
Rank 0 writes every file; validation is split among the processes and summed, so every
process takes the same stopping decision.

``cuda_graph`` (one process on a GPU): every batch of the full per-process size runs
through :class:`orthocore.train.graphs.CapturedStep` — three eager warm-up steps, then
the whole step (forward, input gradient, penalty, double backward, optimizer update)
captured once and replayed, the batch, its reference gradients and the penalty's rows
copied into the graph's static inputs. The reference gradients are computed (or looked
up in the cache) outside the graph. A batch of another size (the last of an epoch when
the batch does not divide the training set) takes the eager step on the same weights
and optimizer state. Adam is then made ``capturable`` (its step count on the device),
so the weights equal an eager run's to float rounding rather than bit for bit, and a
resumed run captures afresh. Dropout inside a captured step draws from PyTorch's
graph-safe CUDA generator, not necessarily the numbers the eager step would draw.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Subset

from orthocore import data as datasets
from orthocore import distributed, interrupts, models
from orthocore._io import move_aside
from orthocore.checkpoint import read_checkpoint, save_checkpoint
from orthocore.gradients import ReferenceGradientCache, deltas, reference_gradients
from orthocore.locks import output_lock
from orthocore.metrics import correct_count
from orthocore.model_specs import open_model, parse_model_spec, spec_digest
from orthocore.progress import progress
from orthocore.runtime import retain_freed_memory, versions
from orthocore.train.config import TrainConfig
from orthocore.train.graphs import CapturedStep
from orthocore.train.objective import StepLoss, StepWeights, orthogonal_loss
from orthocore.train.records import MetricsLog, write_run_record
from orthocore.train.shards import StepShare, epoch_order, epoch_sampler, step_share
from orthocore.train.state import capture_rng, load_state, restore_rng, save_state
from orthocore.train.stopping import StoppingRule

__all__ = ["TrainResult", "ensure_trained", "epoch_order", "resume", "train"]


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: the final model (eval mode).
        epochs: epochs trained in total.
        history: ``(epoch, validation accuracy)`` of every evaluation.
        out: the run folder.
    """

    model: nn.Module
    epochs: int
    history: list[tuple[int, float]]
    out: Path


class _Stopped(Exception):
    """Raised inside an epoch when the processes agreed to stop after a step; carries
    the epoch's ``partial`` progress for ``state.pt``."""

    def __init__(self, partial: dict) -> None:
        super().__init__(partial)
        self.partial = partial


class IndexedDataset(Dataset):
    """``(image, label, index)`` so that a batch can look up cached reference gradients."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        image, label = self.dataset[index]
        return image, label, index


class _StepObjective(nn.Module):
    """One step's loss as a module, for ``DistributedDataParallel`` to wrap (see the
    module's note): its forward is :func:`orthogonal_loss` of the model it holds."""

    def __init__(self, model: nn.Module, lam: float, penalty: str) -> None:
        super().__init__()
        self.model, self.lam, self.penalty = model, lam, penalty

    def forward(self, x: Tensor, y: Tensor, reference_grads: Tensor | None, rows: Tensor | None,
                ce_weights: Tensor, penalty_weights: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:  # fmt: skip
        weights = StepWeights(ce=ce_weights, penalty=penalty_weights)
        result = orthogonal_loss(self.model, x, y, reference_grads, self.lam, self.penalty, rows, weights)
        return result.loss, result.ce, result.delta


def _reference_config(config: TrainConfig) -> dict | None:
    """The first reference's recorded training config, if it is an orthocore checkpoint
    that has one."""
    if not config.references or parse_model_spec(config.references[0]).kind != "checkpoint":
        return None
    return read_checkpoint(config.references[0])["extra"].get("config")


def _make_optimizer(config: TrainConfig, parameters: list[nn.Parameter]) -> torch.optim.Optimizer:
    """The run's optimizer; with ``cuda_graph`` Adam keeps its step count on the device
    (``capturable``) so that a CUDA graph can hold its update (SGD has no host state)."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay, capturable=config.cuda_graph)


@dataclass
class _EpochSums:
    """An epoch's running sums on this process (device tensors, float64) and its count."""

    ce: Tensor
    delta: Tensor
    loss: Tensor
    samples: int
    seconds: float

    @classmethod
    def restored(cls, partial: dict | None, world: distributed.World, device: torch.device) -> "_EpochSums":
        """Zero sums, or this process's sums of a stopped epoch (on another number of
        processes their totals sit on rank 0, which is all the epoch's record needs)."""
        values, samples = [0.0, 0.0, 0.0], 0
        if partial is not None:
            processes = partial["processes"]
            if partial["world_size"] == world.size:
                values, samples = processes[world.rank]["sums"], processes[world.rank]["samples"]
            elif world.main:
                values = [sum(p["sums"][i] for p in processes) for i in range(3)]
                samples = sum(p["samples"] for p in processes)
        ce, delta, loss = (torch.tensor(value, device=device, dtype=torch.float64) for value in values)
        return cls(ce, delta, loss, samples, 0.0 if partial is None else float(partial["seconds"]))


class _Run:
    """The objects of one run, set up from a config (and a training state on resume).

    ``config`` is the run's resolved configuration: the optimizer settings left as None
    are filled (from the first reference's recorded config, else the defaults) on a
    fresh run; a resumed run's recorded config has them already. The caller's config is
    never changed.
    """

    def __init__(self, config: TrainConfig, state: dict | None) -> None:
        self.world = distributed.world()
        self.device = distributed.device(config.device)
        self.config = config if state is not None else config.with_optimizer(_reference_config(config))
        self.out = Path(config.out)
        self.train_set, self.val_set = self._open_data()
        self.references = [open_model(path, self.device, data=self.train_set, name="reference").requires_grad_(False)
                           for path in config.references]  # fmt: skip
        self.reference_digests = [spec_digest(path) for path in config.references]
        self.model, parameters = self._build_model()
        self.optimizer = _make_optimizer(self.config, parameters)
        self.rule = StoppingRule(config.eval_every, config.max_epochs)
        self.cache = self._reference_cache()
        self.epoch = 0
        self.partial = None  # the progress of a stopped epoch, replayed first
        if state is not None:
            self._restore(state)
        self.step = self._distributed_step() if self.world.size > 1 else None
        # cuda_graph (one process, checked by the config): each full batch's step replays one CUDA graph
        self.captured = (CapturedStep(functools.partial(self._train_step, captured=True), self.optimizer, self.device)
                         if config.cuda_graph else None)  # fmt: skip

    def _distributed_step(self) -> DistributedDataParallel:
        """The step's objective under DDP (after any restore: DDP starts every process
        from rank 0's weights and buffers)."""
        objective = _StepObjective(self.model, self.config.lam, self.config.penalty)
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(objective, device_ids=device_ids, find_unused_parameters=False)

    def _open_data(self) -> tuple[Dataset, Dataset]:
        """The training and validation splits, checked against the architecture's input."""
        config = self.config
        train_set = datasets.open_dataset(config.data, "train", augment=config.augment,
                                          max_pixels=config.max_image_pixels)  # fmt: skip
        expected = models.spec(config.arch).input_shape
        if tuple(train_set.input_shape) != expected:
            raise ValueError(
                f"data: {config.data!r} has images {tuple(train_set.input_shape)}, "
                f"but arch {config.arch!r} expects {expected}"
            )
        if self.world.size > len(train_set):
            raise ValueError(f"data: the training set of {config.data!r} has {len(train_set)} samples, fewer than the "
                             f"{self.world.size} processes torchrun started; start at most {len(train_set)}")  # fmt: skip
        return train_set, datasets.open_dataset(config.data, "val", max_pixels=config.max_image_pixels)

    def _build_model(self) -> tuple[nn.Module, list[nn.Parameter]]:
        """The seeded model on the run's device, and the parameters it trains."""
        config = self.config
        torch.manual_seed(config.seed)
        model = models.create(config.arch, self.train_set.num_classes, init=config.init, weights=config.weights)
        parameters = models.prepare_finetuning(model, config.arch) if config.finetune else list(model.parameters())
        return model.to(self.device), parameters

    def _restore(self, state: dict) -> None:
        """Weights, optimizer, stopping history, epoch and random state of a saved run."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rule.history = [(int(e), float(a)) for e, a in state["history"]]
        self.epoch = int(state["epoch"])
        self.partial = state.get("partial")
        restore_rng(state["rng"])

    def _reference_cache(self) -> ReferenceGradientCache | None:
        config = self.config
        if config.lam == 0 or config.cache == "none" or getattr(self.train_set, "augmented", False):
            return None
        path = self.out / "reference_grads.npy" if config.cache == "disk" else None  # shared by all processes
        specs = [parse_model_spec(p) for p in config.references]
        key = [[*_file_stamp(spec.file), spec.module, spec.factory] for spec in specs]
        return ReferenceGradientCache(
            self.references, self.train_set, path=path, key={"references": key, "data": config.data}, device=self.device
        )

    def penalty_rows(self, batch: int, generator: torch.Generator) -> Tensor | None:
        """The batch rows the penalty is taken on: None for all of them (λ = 0, no
        ``penalty_batch``, or a batch no larger than it), else k sorted random rows."""
        k = self.config.penalty_batch
        if self.config.lam == 0 or k is None or k >= batch:
            return None
        return torch.randperm(batch, generator=generator)[:k].sort().values

    def reference_grads(self, x: Tensor, y: Tensor, index: Tensor) -> Tensor | None:
        if self.config.lam == 0:
            return None
        if self.cache is not None:
            return self.cache[index].to(self.device, non_blocking=True)
        return torch.stack([reference_gradients(reference, x, y) for reference in self.references])  # (R, B, C, H, W)

    def train_epoch(self, epoch: int, partial: dict | None = None) -> dict:
        """Trains one epoch (its rest after ``partial``, a stopped epoch's progress) and
        returns its metrics record.

        Raises:
            _Stopped: the processes agreed to stop after a step (SIGTERM).
            ValueError: the loss diverged.
        """
        config, model, world = self.config, self.model, self.world
        model.train()
        per_process_batch = config.batch_size // world.size
        sampler = epoch_sampler(IndexedDataset(self.train_set), config.seed, epoch, world)
        done = 0 if partial is None else int(partial["steps"])
        order = list(sampler)[done * per_process_batch:]  # the samples of the steps still to take
        loader = DataLoader(IndexedDataset(self.train_set), batch_size=per_process_batch, sampler=order)
        batches = iter(loader)  # (creating it draws the loader's base seed from torch's generator)
        sums = _EpochSums.restored(partial, world, self.device)
        if partial is not None:
            self._restore_step_rng(partial, epoch, done)
        elif world.size > 1:  # augmentation and dropout draws: a stream per (epoch, process), so a resume replays them
            torch.manual_seed((config.seed * 1_000_003 + epoch) * 4099 + world.rank)
        start = time.perf_counter() - sums.seconds
        show = config.progress and world.main
        total_steps = done + len(loader)
        bar = progress(batches, total=len(loader), desc=f"epoch {epoch}", unit="batch", enabled=show)
        # The sub-batch penalty's rows: drawn from the epoch's own generator, like its order.
        rows_generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch + 500_000)
        if partial is not None:
            rows_generator.set_state(partial["rows_generator"])
        ce_sum, delta_sum, loss_sum, samples = sums.ce, sums.delta, sums.loss, sums.samples
        for step, (x, y, index) in enumerate(bar, start=done):
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            share = step_share(step, len(y), per_process_batch, len(self.train_set), world)
            global_rows = self.penalty_rows(share.global_count, rows_generator)  # on the CPU, as `index` is
            rows = share.rows(global_rows)
            if rows is None:
                reference_grads = self.reference_grads(x, y, index)
            else:
                picked, rows = index[rows], rows.to(self.device)
                reference_grads = self.reference_grads(x[rows], y[rows], picked)
            if self.captured is not None and len(y) == per_process_batch:
                loss, ce, delta = self.captured(x=x, y=y, reference_grads=reference_grads, rows=rows)
            else:  # also the fallback of a captured run for a batch of another shape
                self.optimizer.zero_grad(set_to_none=True)
                loss, ce, delta = self._train_step(x, y, reference_grads, rows, share, global_rows)
            counted = len(y) if self.step is None else int(share.counted.sum())
            ce_sum += ce * counted
            loss_sum += loss
            if delta is not None and delta.numel():
                delta_sum += delta.abs().mean() * counted
            samples += counted
            if distributed.stop_requested():  # every process asks after every step: all stop after the same one
                seconds = time.perf_counter() - start
                raise _Stopped(self._partial(step + 1, total_steps, [ce_sum, delta_sum, loss_sum], samples,
                                             seconds, rows_generator))  # fmt: skip
            if show and (step % 10 == 0 or step == total_steps - 1):
                bar.set_postfix(
                    {
                        "ce": f"{ce_sum.item() / samples:.3f}",
                        "|δ|": f"{delta_sum.item() / samples:.3f}" if config.lam else "-",
                        "img/s": f"{world.size * samples / (time.perf_counter() - start):.0f}",
                    }
                )
        # One sync per epoch; every process sees the same sums, so all stop together on a divergence.
        ce_total, delta_total, loss_total, samples = distributed.all_reduce_sum(
            torch.stack([ce_sum, delta_sum, loss_sum, torch.tensor(float(samples), dtype=torch.float64, device=self.device)])
        ).tolist()
        if not math.isfinite(loss_total):  # the caller then saves nothing of this epoch
            raise ValueError(
                f"training diverged in epoch {epoch}: the loss became NaN or inf (lam={config.lam:g}, "
                f"lr={self.optimizer.param_groups[0]['lr']:g}); nothing of this epoch was saved: lower lam or lr"
            )
        record = {"epoch": epoch, "train_ce": ce_total / samples, "images_per_s": samples / (time.perf_counter() - start)}
        if config.lam:
            record["train_abs_delta"] = delta_total / samples
        return record

    def _partial(self, steps: int, total_steps: int, sums: list[Tensor], samples: int, seconds: float,
                 rows_generator: torch.Generator) -> dict:  # fmt: skip
        """The progress of an epoch stopped after ``steps`` of its ``total_steps``, with
        every process's sums and random state (a collective: gathered from all of them)."""
        mine = {"sums": [float(value) for value in sums], "samples": samples, "rng": capture_rng()}
        return {"steps": steps, "total_steps": total_steps, "world_size": self.world.size, "seconds": seconds,
                "rows_generator": rows_generator.get_state(), "processes": distributed.gather(mine)}  # fmt: skip

    def _restore_step_rng(self, partial: dict, epoch: int, done: int) -> None:
        """This process's random state at the step the epoch stopped after: its own when
        the run has as many processes as then, else a fresh stream seeded by the step."""
        if partial["world_size"] == self.world.size:
            restore_rng(partial["processes"][self.world.rank]["rng"])
        else:
            torch.manual_seed(((self.config.seed * 1_000_003 + epoch) * 4099 + done) * 65_537 + self.world.rank)

    def _train_step(self, x: Tensor, y: Tensor, reference_grads: Tensor | None, rows: Tensor | None,
                    share: StepShare | None = None, global_rows: Tensor | None = None, *,
                    captured: bool = False) -> tuple[Tensor, Tensor, Tensor | None]:  # fmt: skip
        """Forward, input gradient, penalty, backward and optimizer update of one batch,
        onto gradients the caller has zeroed; returns the detached loss, mean
        cross-entropy and δ (:class:`StepLoss`'s). ``captured``: the step that
        :class:`CapturedStep` records (autocast without its cast cache, which a graph
        cannot hold)."""
        bf16, cache = self.config.autocast == "bf16", False if captured else None  # None: autocast's default
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16, cache_enabled=cache):
            result = self._loss(x, y, reference_grads, rows, share, global_rows)
        result.loss.backward()
        self.optimizer.step()
        return result.loss.detach(), result.ce, result.delta

    def _loss(self, x: Tensor, y: Tensor, reference_grads: Tensor | None, rows: Tensor | None,
              share: StepShare | None, global_rows: Tensor | None) -> StepLoss:  # fmt: skip
        """The step's objective: in one process :func:`orthogonal_loss` with means; under
        DDP this process's weighted share through the wrapped :class:`_StepObjective`."""
        config = self.config
        if self.step is None:
            return orthogonal_loss(self.model, x, y, reference_grads, config.lam, config.penalty, rows)
        weights = share.weights(global_rows)
        loss, ce, delta = self.step(x, y, reference_grads, rows, weights.ce.to(self.device), weights.penalty.to(self.device))
        return StepLoss(loss, ce, delta)

    def evaluate(self, record: dict) -> None:
        """Validation accuracy and δ to the references, each process taking every W-th
        image and the sums added up, so that every process records the same numbers."""
        shard = Subset(self.val_set, distributed.shard(len(self.val_set)))
        correct, total = correct_count(self.model, shard, self.device)
        sums = [correct, total]
        for reference in self.references:
            values = deltas(self.model, reference, shard, device=self.device) if len(shard) else torch.zeros(0)
            sums += [float(values.sum()), float(values.abs().sum())]
        sums = distributed.all_reduce_sum(torch.tensor(sums, dtype=torch.float64)).tolist()
        record["val_accuracy"] = 100.0 * sums[0] / sums[1]
        if self.references:
            record["val_delta"] = sum(sums[2::2]) / (sums[1] * len(self.references))
            record["val_abs_delta"] = sum(sums[3::2]) / (sums[1] * len(self.references))
        best = self.rule.best
        self.rule.record(record["epoch"], record["val_accuracy"])
        if (best is None or record["val_accuracy"] > best[1]) and self.world.main:
            self.save_model(self.out / "best.ckpt")

    def save_model(self, path: Path) -> None:
        extra = {"config": self.config.to_dict(), "history": [list(h) for h in self.rule.history], "versions": versions()}
        num_classes = self.train_set.num_classes
        save_checkpoint(path, self.model, arch=self.config.arch, num_classes=num_classes, extra=extra, seal=True)

    def save_state(self, epoch: int, partial: dict | None = None) -> None:
        """``state.pt`` after ``epoch`` whole epochs (and the ``partial`` progress of the next)."""
        save_state(self.out / "state.pt", model=self.model, optimizer=self.optimizer, epoch=epoch,
                   history=self.rule.history, config=self.config.to_dict(), reference_digests=self.reference_digests,
                   partial=partial)  # fmt: skip


def train(config: TrainConfig, *, resume: bool = False) -> TrainResult:
    """Runs Algorithm 1 (λ > 0) or ordinary training (λ = 0) to its stopping rule.

    Args:
        config: the run's configuration (not modified; the resolved copy is recorded).
        resume: continue the run in ``config.out`` from its last ``state.pt``; ``config``
            must equal the recorded one except for ``progress`` (fields left None take
            the recorded values). The result equals that of an uninterrupted run, after
            ``kill -9`` and after SIGTERM alike.

    Returns:
        A :class:`TrainResult`.

    Raises:
        ValueError: a bad config field (named), a resume config that differs, or a
            damaged ``state.pt`` (named).
        FileExistsError: ``config.out`` already holds a run and ``resume`` is False.
        orthocore.locks.OutputLockedError: another job holds ``config.out``.
        orthocore.interrupts.Interrupted: SIGTERM; ``state.pt`` then holds the point
            to resume from.

    A single process keeps the memory it frees from then on
    (:func:`orthocore.runtime.retain_freed_memory`): each step reuses the last step's
    memory instead of faulting in fresh pages.
    """
    config.validate()
    with distributed.held_on_main(lambda: output_lock(config.out)):
        return _train(config, resume)


def _train(config: TrainConfig, resume: bool) -> TrainResult:
    """:func:`train` inside the folder's lock."""
    retain_freed_memory()
    world = distributed.world()
    if config.batch_size % world.size:
        raise ValueError(f"batch_size: the global batch {config.batch_size} does not split evenly among the "
                         f"{world.size} processes torchrun started; choose a multiple of {world.size}")  # fmt: skip
    config, state = distributed.on_main(lambda: _opening_state(config, resume))  # rank 0 reads; all get it
    run = _Run(config, state)
    if world.main:
        log = MetricsLog(run.out / "metrics.jsonl", keep_until_epoch=run.epoch if resume else None)
        if not resume:
            write_run_record(run.out / "run.json", run.config.to_dict(), str(run.device), processes=world.size)
    epoch = run.epoch
    while not (epoch and run.rule.should_stop(epoch)):
        epoch += 1
        partial, run.partial = run.partial, None
        try:
            record = run.train_epoch(epoch, partial)
        except _Stopped as stopped:
            if world.main:
                run.save_state(epoch - 1, stopped.partial)
            distributed.barrier()  # every process stops once the state is on disk
            done = stopped.partial
            raise interrupts.Interrupted(
                f"stopped by SIGTERM in epoch {epoch} after step {done['steps']} of {done['total_steps']}; "
                f"the training state is saved in {str(run.out / 'state.pt')!r}"
            ) from None
        if run.rule.evaluates_after(epoch):
            run.evaluate(record)
        if world.main:
            log.append(record)
            run.save_state(epoch)
    if world.main:
        run.save_model(run.out / "model.ckpt")
    distributed.barrier()  # every process returns once the final model is on disk
    return TrainResult(run.model.eval(), epoch, list(run.rule.history), run.out)


def _opening_state(config: TrainConfig, resume: bool) -> tuple[TrainConfig, dict | None]:
    """The run's config and, on resume, its saved state, checked against the folder."""
    state_path = Path(config.out) / "state.pt"
    if not resume:
        if state_path.exists():
            raise FileExistsError(f"out: {config.out!r} already holds a run; resume it or choose another folder")
        return config, None
    if not state_path.is_file():
        raise FileNotFoundError(f"resume: no training state at {str(state_path)!r}")
    state = load_state(state_path)
    recorded = TrainConfig.from_dict(state["config"])  # a field added since the run was recorded takes its default
    recorded_values = recorded.to_dict()
    differing = [
        name
        for name, value in config.to_dict().items()
        if name not in ("out", "progress") and value is not None and value != recorded_values[name]
    ]
    references = recorded.references
    if "references" in differing and _same_files(config.references, state.get("reference_digests")):
        differing.remove("references")  # the same checkpoints, moved or copied with the run (a study's)
        references = config.references
    if differing:
        raise ValueError(f"resume: the run in {config.out!r} was recorded with other {', '.join(differing)}")
    # the folder it is resumed in, wherever it was first trained (a run folder may be moved or copied)
    return dataclasses.replace(recorded, out=config.out, progress=config.progress, references=references), state


def _file_stamp(path: Path) -> list:
    """Where a file is, its size and its time of change: cheap to compare, unlike a digest."""
    return [str(path.resolve()), path.stat().st_size, path.stat().st_mtime_ns]


def _same_files(paths: list[str], digests: list[str] | None) -> bool:
    """Whether the files at ``paths`` are, in order, those whose digests a state recorded."""
    return digests is not None and len(paths) == len(digests) and all(
        parse_model_spec(p).file.is_file() and spec_digest(p) == d for p, d in zip(paths, digests))  # fmt: skip


def ensure_trained(config: TrainConfig) -> bool:
    """Trains ``config`` into ``config.out`` unless its ``model.ckpt`` is there already,
    resuming an interrupted run; True when it trained. Rank 0 looks at the folder (in
    its lock) and every process follows its answer.

    A cached file that fails its check — ``model.ckpt`` or ``state.pt`` whose bytes do
    not match their seal, or that cannot be read — is moved aside with a one-line
    warning (:func:`orthocore._io.move_aside`) and computed again: from ``state.pt``
    when that is sound (the same final model, as a resume is exact), else afresh.
    """
    config.validate()
    with distributed.held_on_main(lambda: output_lock(config.out)):
        finished, interrupted = distributed.on_main(lambda: _cached_run(Path(config.out)))
        if finished:
            return False
        _train(config, interrupted)
        return True


def _cached_run(out: Path) -> tuple[bool, bool]:
    """Whether ``out`` holds a sound final model, and a sound training state; a damaged
    one is moved aside."""
    model_path, state_path = out / "model.ckpt", out / "state.pt"
    if model_path.is_file():
        try:
            read_checkpoint(model_path)  # checks its seal too
            return True, False
        except ValueError as error:
            move_aside(model_path, str(error))
    if state_path.is_file():
        try:
            load_state(state_path)
            return False, True
        except ValueError as error:
            move_aside(state_path, str(error))
    return False, False


def resume(out: str, *, progress: bool = True) -> TrainResult:
    """Continues the run in folder ``out`` with its recorded configuration."""
    def recorded() -> TrainConfig:
        state_path = Path(out) / "state.pt"
        if not state_path.is_file():
            raise FileNotFoundError(f"resume: no training state at {str(state_path)!r}")
        return TrainConfig.from_dict(load_state(state_path)["config"])

    return train(dataclasses.replace(distributed.on_main(recorded), out=out, progress=progress), resume=True)
