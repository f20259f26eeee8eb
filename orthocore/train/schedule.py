"""Many training runs, some trained against others' checkpoints, on a pool of workers.

A study trains its models in an order their references impose (an orthogonal model needs
its reference K's checkpoint, the secret-references model needs K's and the private
references'). :func:`train_all` starts every run whose checkpoints it needs exist, as
soon as they exist, on :class:`orthocore.workers.Workers`, so independent runs (every
seed's K, ordinary retrain and surrogates, then their orthogonal models, ...) train side
by side. Each run is :func:`orthocore.train.ensure_trained`: a finished run is reused
and an interrupted one resumed, so the schedule can be cut anywhere and started again.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path

from orthocore.train.config import TrainConfig
from orthocore.train.trainer import ensure_trained
from orthocore.workers import Workers


@dataclasses.dataclass(frozen=True)
class Planned:
    """One training run of a schedule.

    Attributes:
        key: names the run among the schedule's runs.
        needs: keys of the runs (or given checkpoints) whose checkpoints it is trained against.
        config: builds its configuration (``out`` set: the folder it trains in) from the
            checkpoint paths of ``needs``, in that order.
    """

    key: Hashable
    needs: tuple[Hashable, ...]
    config: Callable[[list[str]], TrainConfig]


@dataclasses.dataclass(frozen=True)
class Trained:
    """A finished run: its checkpoint, and its training seconds (None when it was already trained)."""

    checkpoint: str
    seconds: float | None


def _train_job(config: TrainConfig) -> float | None:
    """Runs ``config`` to its end in a worker: its seconds, or None if it was finished already."""
    start = time.perf_counter()
    return time.perf_counter() - start if ensure_trained(config) else None


def train_all(
    plans: Iterable[Planned],
    workers: Workers,
    *,
    given: dict[Hashable, str] | None = None,
    on_done: Callable[[Hashable, Trained], None] | None = None,
) -> dict[Hashable, Trained]:
    """Trains (or reuses) every planned run, each once the runs it needs have finished.

    Runs are started in the order given whenever their needs are met, so the result does
    not depend on the number of workers; with one worker they train one after another
    in that order.

    Args:
        plans: the runs; keys unique.
        workers: where the runs train.
        given: checkpoints that exist already, by key (e.g. a user's reference).
        on_done: called in this process as each run finishes.

    Returns:
        Every planned run by key.

    Raises:
        ValueError: a repeated key, or a run that needs a key no run or given checkpoint has.
    """
    plans = list(plans)
    known = dict(given or {})
    keys = [plan.key for plan in plans]
    if len(set(keys)) != len(keys):
        raise ValueError("plans: every run needs a key of its own")
    for plan in plans:
        missing = [need for need in plan.needs if need not in known and need not in keys]
        if missing:
            raise ValueError(f"plans: {plan.key!r} needs {missing!r}, which no run or given checkpoint provides")
    checkpoints = dict(known)
    trained: dict[Hashable, Trained] = {}
    running: dict[Future, tuple[Planned, str]] = {}
    waiting = plans
    while waiting or running:
        ready = [plan for plan in waiting if all(need in checkpoints for need in plan.needs)]
        waiting = [plan for plan in waiting if plan not in ready]
        for plan in ready:
            config = plan.config([checkpoints[need] for need in plan.needs])
            running[workers.submit(_train_job, config)] = (plan, str(Path(config.out) / "model.ckpt"))
        if not running:
            raise ValueError(f"plans: {[plan.key for plan in waiting]!r} need each other")
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in [f for f in running if f in done]:  # in submission order
            plan, checkpoint = running.pop(future)
            trained[plan.key] = Trained(checkpoint, future.result())
            checkpoints[plan.key] = checkpoint
            if on_done is not None:
                on_done(plan.key, trained[plan.key])
    return {key: trained[key] for key in keys}
