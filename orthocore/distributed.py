"""Several processes on PyTorch's own engine: ``torchrun`` starts them, ``torch.distributed``
connects them, and this module is the little orthocore needs on top.

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` in each process; the
command line runs every command inside :func:`session`, which joins the process group
(``gloo`` for CPU tensors, ``NCCL`` for CUDA tensors, in one group), gives each process
its device (``cuda:LOCAL_RANK`` on a GPU node), and destroys the group again on every
way out of the block: normal end, error, Ctrl-C and SIGTERM (which
:mod:`orthocore.interrupts` turns into an exception at a step boundary). PyTorch's
shutdown notes ask every process to call ``destroy_process_group()`` once at the end:
a group left to the interpreter's finalisation has gloo work threads that still hold
Python objects while the interpreter is torn down, and the process aborts with
"terminate called without an active exception". :func:`stop` also collects the
garbage first, so that no ``DistributedDataParallel`` reducer of a finished training
run still holds the group when it is destroyed. Library code asks :func:`world` who it
is: without a process group it is rank 0 of 1, and every collective below is then a
no-op, so one code path serves one process and many.

Collectives here run on CPU tensors (the ``gloo`` half of the group), so they work on
CPU and GPU runs alike; they are for bookkeeping (sums of counts, a broadcast state,
an error raised on rank 0), never for gradients, which ``DistributedDataParallel``
reduces.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from orthocore import interrupts
from torch import nn

from orthocore.runtime import launched

T = TypeVar("T")

# The errors a check on rank 0 may raise that the other ranks raise too (bad input, not bugs).
_SHARED_ERRORS = {error.__name__: error for error in (ValueError, FileExistsError, FileNotFoundError, OSError)}


@dataclass(frozen=True)
class World:
    """Who this process is among the job's processes.

    Attributes:
        rank: 0 … size − 1; rank 0 writes every file.
        size: the number of processes (``torchrun``'s world size; 1 without torchrun).
        local_rank: the rank on this machine (the GPU it takes).
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """True on the process that writes files and prints results."""
        return self.rank == 0


def world() -> World:
    """This process's place in the initialised process group; rank 0 of 1 without one."""
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))


DEVICE_CHOICES = ("auto", "cpu", "cuda")


def device(name: str | torch.device | None, *, model: nn.Module | None = None) -> torch.device:
    """The device this process computes on, the one place a device is decided: ``"auto"``
    (CUDA when a GPU is visible, else the CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``, a
    ``torch.device``, or ``None`` for the device of ``model``'s parameters (the CPU for a
    model without any). Under a process group ``auto``/``cuda`` mean ``cuda:LOCAL_RANK``.

    Raises:
        ValueError: an unknown name, CUDA asked for where no GPU is visible; under a
            process group also a ``cuda:N`` (each process takes its own GPU) or fewer
            GPUs than processes on this machine.

    Examples:
        >>> device("cpu")
        device(type='cpu')
    """
    if name is None:
        parameter = next(iter(model.parameters()), None) if isinstance(model, nn.Module) else None
        return parameter.device if parameter is not None else torch.device("cpu")
    resolved = _resolve(name)
    current = world()
    if current.size == 1 or resolved.type != "cuda":
        return resolved
    if name not in ("auto", "cuda"):
        raise ValueError(f"device: under torchrun give 'cuda' or 'auto' (process k takes cuda:LOCAL_RANK), got {name!r}")
    if current.local_rank >= torch.cuda.device_count():
        raise ValueError(
            f"device: this machine has {torch.cuda.device_count()} GPU(s) but torchrun started a process with "
            f"LOCAL_RANK {current.local_rank}; use --nproc_per_node {torch.cuda.device_count()} or --device cpu"
        )
    return torch.device("cuda", current.local_rank)


def _resolve(name: str | torch.device) -> torch.device:
    """``name`` as a device of this machine, whatever the process group."""
    if isinstance(name, str) and name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"device: expected one of {', '.join(DEVICE_CHOICES)} (or cuda:N), got {name!r}") from None
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device: expected one of {', '.join(DEVICE_CHOICES)} (or cuda:N), got {name!r}")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {name!r} requested but no CUDA device is available")
    return resolved


def start(device_name: str, *, timeout_s: float = 1800.0) -> World:
    """Joins the process group when ``torchrun`` started this process and none is
    initialised yet; returns :func:`world`.

    The device is checked first, so that ``--device cuda`` on a machine without GPUs is
    a clear error on every rank before any process waits for another.
    """
    _resolve(device_name)
    if launched() and not dist.is_initialized():
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
        if _resolve(device_name).type == "cuda":
            torch.cuda.set_device(device(device_name))
    return world()


def stop() -> None:
    """Leaves the process group (if any), as every process should before it exits: the
    garbage is collected first (a reference cycle may still hold a DDP reducer and its
    pending work), then the group is destroyed while the interpreter is whole."""
    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


@contextlib.contextmanager
def session(device_name: str, *, join: bool = True) -> Iterator[World]:
    """The one way orthocore runs under ``torchrun``: joins the process group when
    ``torchrun`` started this process (``join``; :func:`start`), yields :func:`world`,
    and leaves the group (:func:`stop`) however the block ends — returning, raising,
    Ctrl-C, or SIGTERM turned into :class:`orthocore.interrupts.Interrupted`. Without
    ``torchrun`` it only yields rank 0 of 1.

    Raises:
        ValueError: ``join`` is False under ``torchrun`` (a one-process command), or
            the device is unusable (:func:`start`).
    """
    try:
        if launched() and not join:
            raise ValueError("torchrun: this command runs in one process; start it without torchrun")
        yield start(device_name) if join else world()
    finally:
        stop()


def stop_requested() -> bool:
    """Whether any process of the job has been asked to stop (SIGTERM,
    :mod:`orthocore.interrupts`); every process gets the same answer, so that all of them
    stop after the same step. A collective under ``torchrun``: every process must call
    it at the same points."""
    asked = interrupts.requested()
    if world().size == 1:
        return asked
    flag = torch.tensor([1.0 if asked else 0.0], dtype=torch.float64)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


@contextlib.contextmanager
def held_on_main(factory: Callable[[], contextlib.AbstractContextManager]) -> Iterator[None]:
    """Enters the context ``factory()`` on rank 0 only (an output's lock: rank 0 holds it
    for the job) for the block; an error entering it is raised on every rank
    (:func:`on_main`)."""
    with contextlib.ExitStack() as stack:

        def enter() -> None:
            stack.enter_context(factory())

        on_main(enter)
        yield


def barrier() -> None:
    """Waits for every rank (no-op in one process)."""
    if world().size > 1:
        dist.barrier()


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Element-wise sum of ``values`` over the ranks: a new float64 CPU tensor of the same
    shape (``values`` itself in one process, converted)."""
    summed = values.detach().to("cpu", torch.float64).clone()
    if world().size > 1:
        dist.all_reduce(summed)
    return summed


def broadcast(value: T) -> T:
    """Rank 0's ``value`` on every rank (any picklable object; ``value`` in one process)."""
    if world().size == 1:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def gather(value: T) -> list[T]:
    """Every rank's ``value``, in rank order, on every rank (any picklable object)."""
    if world().size == 1:
        return [value]
    values: list[Any] = [None] * world().size
    dist.all_gather_object(values, value)
    return values


def on_main(work: Callable[[], T]) -> T:
    """Runs ``work`` on rank 0 only and returns its result on every rank. When it raises
    a bad-input error (``ValueError``, ``OSError`` and kin), every rank raises the same
    error with the same message, so that all processes stop together with one clear
    message instead of waiting for a rank that has left."""
    if world().size == 1:
        return work()
    outcome: tuple[str, Any] = ("ok", None)
    if world().main:
        try:
            outcome = ("ok", work())
        except tuple(_SHARED_ERRORS.values()) as error:  # the most specific shared kind (a ValueError subclass stays one)
            outcome = (next(name for name, kind in _SHARED_ERRORS.items() if isinstance(error, kind)), str(error))
    kind, payload = broadcast(outcome)
    if kind != "ok":
        raise _SHARED_ERRORS[kind](payload)
    return payload


def shard(size: int) -> range:
    """The indices ``rank, rank + W, rank + 2W, …`` below ``size`` that this rank takes of
    ``size`` items (every item on exactly one rank; ``range(size)`` in one process)."""
    current = world()
    return range(current.rank, size, current.size)


def sum_in_place(values: torch.Tensor) -> None:
    """Adds up ``values`` (a CPU tensor) over the ranks in place (no-op in one process)."""
    if world().size > 1:
        dist.all_reduce(values)
