"""What the benchmark files share: the device they time on, and timed callables that wait
for the GPU, so that a benchmark measures the work and not only its launch."""

import os

import torch

from orthocore.runtime import retain_freed_memory

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def as_the_trainer_allocates() -> str:
    """Makes this process keep the memory it frees, as :func:`orthocore.train.train` does
    (:func:`orthocore.runtime.retain_freed_memory`), so that a training step is timed as
    the trainer runs it; ``ORTHOCORE_BENCH_MALLOC=glibc`` leaves glibc's default, for
    the comparison. Returns which of the two is in force, for the printed results."""
    if os.environ.get("ORTHOCORE_BENCH_MALLOC") == "glibc":
        return "glibc's default malloc"
    return "freed memory kept" if retain_freed_memory() else "glibc's default malloc (no mallopt)"


def synchronized(fn):
    """``fn`` followed by a device synchronisation on a GPU."""

    def run():
        out = fn()
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        return out

    return run


def optimizer_step(model, optimizer, loss_of):
    """A synchronised training step: ``loss_of(model)``, backward, ``optimizer.step()``;
    returns the detached loss."""

    def step():
        loss = loss_of(model)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return synchronized(step)


def round_robin(steps: dict, rounds: int) -> dict[str, float]:
    """The minimum time of each callable of ``steps`` over ``rounds`` rounds that call
    them in turn (so that load from other processes hits all of them alike)."""
    import time

    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}
