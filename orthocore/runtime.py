"""What a run executes with: whether a launcher started the process, how the process
keeps freed memory, and the software versions it records beside its results
(``run.json``, checkpoints, ``results.json``, tables). The device it runs on is
:func:`orthocore.distributed.device`'s."""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from importlib import metadata

import numpy as np
import torch

import orthocore
from orthocore.dispatch import backends

def launched() -> bool:
    """True when this process was started by ``torchrun`` (or another launcher that sets
    its environment variables)."""
    return all(name in os.environ for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"))


# glibc's mallopt parameters (malloc.h) and the values retain_freed_memory sets.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest: blocks up to 32 MiB come from the heap
TRIM_THRESHOLD = 1024 * 1024 * 1024  # the heap keeps up to 1 GiB of free memory


def retain_freed_memory() -> bool:
    """Makes this process keep the memory it frees for its next allocations (glibc only).

    PyTorch's CPU tensors are plain ``malloc`` blocks. glibc serves a large block (over a
    threshold it raises as blocks are freed, up to 32 MiB) with a fresh ``mmap`` and
    returns it to the system when freed, and it also gives back the free memory at the
    top of its heap. The next step's tensors then land on new pages, each one a page
    fault the kernel zeroes. An orthogonal training step frees and reallocates most of
    its double backward's tensors every step: ResNet-20 at batch 128 (2 threads) took
    45,000–58,000 page faults a step and 7–9 % of its processor time in the kernel, and
    with this setting 1,700–3,300 faults and under 1 %. It fixes both thresholds (blocks up to
    32 MiB from the heap; up to 1 GiB of free heap kept), so the process's memory stays
    near its peak instead of shrinking between steps.

    Called by :func:`orthocore.train.train`, by every ``orthocore`` command and in every
    worker process (:mod:`orthocore.workers`); call it in your own scripts for the same
    effect. Repeated calls change nothing more. Not under ``torchrun``: with it forced on,
    a rank of a two-process run aborted at exit ("terminate called without an active
    exception") in 1 of 90 runs of ``benchmarks/torchrun_soak.sh``, against 0 of 200
    with glibc's default, so ``torchrun`` processes keep the default.

    Returns:
        True when set; False under ``torchrun`` or where the C library has no ``mallopt``
        (not glibc).
    """
    if launched():
        return False
    return set_malloc_thresholds()


def set_malloc_thresholds() -> bool:
    """Fixes glibc's mmap and trim thresholds at :data:`MMAP_THRESHOLD` and
    :data:`TRIM_THRESHOLD` (``mallopt``) in any process; :func:`retain_freed_memory`
    decides where. False where the C library has no ``mallopt``."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError, TypeError):  # no mallopt (musl, macOS) or no C library handle (Windows)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def _installed(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""


def versions() -> dict:
    """The versions a result depends on: Python, the platform, orthocore, torch,
    torchvision, numpy, CUDA, and which kernel backends were available."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "orthocore": orthocore.__version__,
        "torch": str(torch.__version__),
        "torchvision": _installed("torchvision"),
        "numpy": np.__version__,
        "cuda": torch.version.cuda or "",
        "backends": {name: status.available for name, status in backends().items()},
    }
