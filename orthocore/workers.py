"""Independent jobs of one process spread over this machine's cores.

A study trains dozens of small models and runs dozens of independent attacks; most of
them are too small for PyTorch's threads to keep two cores busy (the digits CNN's
training step runs 1.15x faster on two threads than on one). :class:`Workers` runs such
jobs side by side in worker processes, each with one thread per core it stands for, and
hands their results back in the order they were submitted. It is a
:class:`concurrent.futures.ProcessPoolExecutor` (``spawn`` start: a fresh interpreter per
worker, no copied threads or CUDA state) with three additions:

* with one worker no process is started: a job runs at once in the calling process, so
  one code path serves both, and the calling process's threads, monkeypatches and
  ``torchrun`` process group apply to it;
* a worker exits when the process that started it dies (``kill -9`` included), so an
  orphan never keeps writing into a run that is resumed;
* jobs are module-level functions whose arguments pickle (models, tensors, configs);
* each worker keeps the memory it frees (:func:`orthocore.runtime.retain_freed_memory`);
* the workers share the stop flag of :mod:`orthocore.interrupts` with the process that
  started them: SIGTERM to it (or to a worker) stops every job at its next step.

This is parallelism over *jobs* on one machine. One job over several processes or
machines is ``torchrun``'s (:mod:`orthocore.distributed`); under it every process is
already a worker, so :func:`worker_count` gives 1 there.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import torch

from orthocore import distributed, interrupts
from orthocore.checks import check_number
from orthocore.runtime import retain_freed_memory


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_count(requested: int, device: torch.device) -> int:
    """The number of workers for ``requested`` (0: automatic) on ``device``.

    Automatic is one worker per core on a CPU, and 1 on a GPU (whose jobs share one
    device, not the cores) or under ``torchrun`` (whose processes are the workers).

    Raises:
        ValueError: ``requested`` is not an integer ≥ 0, or asks for several workers in a
            ``torchrun`` job.
    """
    check_number(requested, "workers", low=0, integer=True)
    if distributed.world().size > 1:
        if requested > 1:
            raise ValueError(f"workers: {requested} asked for in a torchrun job, whose processes already share "
                             "the work; leave workers at 0 or 1 under torchrun")  # fmt: skip
        return 1
    if requested:
        return requested
    return available_cores() if device.type == "cpu" else 1


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(1.0)


def _start_worker(parent: int, threads: int, stop) -> None:
    torch.set_num_threads(threads)
    retain_freed_memory()
    interrupts.handle_sigterm()
    interrupts.share(stop)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


class Workers:
    """Runs jobs on ``count`` worker processes (at once in this process when ``count`` is 1).

    Use it as a context manager: leaving it waits for the running jobs and stops the
    workers (on an error, jobs not yet started are cancelled).

    Args:
        count: worker processes, ≥ 1.

    Examples:
        >>> with Workers(1) as workers:
        ...     workers.map(abs, [-1, 2, -3])
        [1, 2, 3]
    """

    def __init__(self, count: int = 1) -> None:
        check_number(count, "count", low=1, integer=True)
        self.count = count
        self._pool: ProcessPoolExecutor | None = None
        if count > 1:
            threads = max(1, available_cores() // count)
            context = multiprocessing.get_context("spawn")
            self._stop = context.Event()
            interrupts.share(self._stop)
            self._pool = ProcessPoolExecutor(count, mp_context=context, initializer=_start_worker,
                                             initargs=(os.getpid(), threads, self._stop))  # fmt: skip

    def submit(self, job: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Starts ``job(*args, **kwargs)`` (or queues it until a worker is free); with one
        worker it runs now, and the returned future is already done (its exception, if
        any, is raised by ``result()``, as a worker's would be)."""
        if self._pool is not None:
            return self._pool.submit(job, *args, **kwargs)
        future: Future = Future()
        try:
            future.set_result(job(*args, **kwargs))
        except Exception as error:  # noqa: BLE001 - handed to the caller through result(), as a worker's error is
            future.set_exception(error)
        return future

    def map(self, job: Callable[..., Any], items: Iterable[Any]) -> list:
        """``[job(item) for item in items]``, the items' jobs run side by side."""
        return [future.result() for future in [self.submit(job, item) for item in items]]

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=error is not None)
            interrupts.stop_sharing(self._stop)
