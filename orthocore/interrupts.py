"""SIGTERM as a request to stop at the end of the current step.

Batch schedulers (SLURM, Kubernetes) send SIGTERM some seconds before they kill a job.
Inside :func:`stop_on_sigterm` (every ``orthocore`` command runs in it, and every worker
process of :mod:`orthocore.workers`), SIGTERM only sets a flag. Long loops poll it at
their step boundaries — the trainer after every optimizer step, every evaluation after
every attack batch — through :func:`orthocore.distributed.stop_requested`, which
agrees on it among the processes of a ``torchrun`` job, so that they all stop after the
same step. A loop that stops writes what it needs to resume and raises
:class:`Interrupted`; the command line prints one line saying how to resume and exits
with status 143 (128 + SIGTERM), what a shell reports for a process SIGTERM ended.

Worker processes share one flag with the process that started them (:func:`share`): a
SIGTERM to the study's process stops the jobs on its workers at their next step too.

Every SIGTERM only sets the flag, a second one too: ``torchrun`` passes the SIGTERM it
gets on to its workers, so a worker of a job that a scheduler signals as a whole gets
two, and it must still save its state. A scheduler follows SIGTERM with SIGKILL after
its grace period, and Ctrl-C (SIGINT) still stops at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

EXIT_STATUS = 128 + signal.SIGTERM  # 143

_requested = threading.Event()
_shared: list = []  # multiprocessing Events shared with worker processes or with their parent


class Interrupted(Exception):
    """Raised at a step boundary after SIGTERM; the message says what was saved."""


def requested() -> bool:
    """Whether a stop was asked for: SIGTERM to this process (inside
    :func:`stop_on_sigterm`), or to a process it shares its flag with."""
    return _requested.is_set() or any(event.is_set() for event in _shared)


def request() -> None:
    """Asks for a stop, as SIGTERM does (for tests and for code that stops a job itself)."""
    _requested.set()
    for event in _shared:
        event.set()


def share(event) -> None:
    """Shares the stop flag with other processes through ``event`` (a
    ``multiprocessing`` Event): a stop asked for here sets it, and a set event reads
    as a stop asked for here. A worker pool passes one event to all its workers."""
    _shared.append(event)


def stop_sharing(event) -> None:
    """Undoes :func:`share` (a worker pool that has shut down)."""
    if event in _shared:
        _shared.remove(event)


def _on_sigterm(signum, frame) -> None:
    request()


def handle_sigterm() -> None:
    """From now on, SIGTERM in this process sets the stop flag (a worker process's
    set-up; commands use :func:`stop_on_sigterm`)."""
    signal.signal(signal.SIGTERM, _on_sigterm)


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM sets the stop flag (see the module's note) instead of
    ending the process; the previous handler, and a clear flag, are restored after it.
    Only the main thread can install a handler: elsewhere the block runs with SIGTERM
    as it was."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    _requested.clear()
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _requested.clear()
        _shared.clear()
