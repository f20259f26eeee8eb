"""Throughput of orthogonal training in one process against ``torchrun`` with several.

A slice of a ResNet-20 epoch on generated CIFAR-10-format data (``ORTHOCORE_BENCH_DDP_IMAGES``
training images, default 1024 = 8 steps of the global batch 128), orthogonal to a
randomly initialised reference (the step's cost does not depend on the weights). Each
configuration runs ``orthocore train --max-epochs 1`` as its own command and reports
the epoch's ``images_per_s`` from ``metrics.jsonl`` (the steps only: not the start-up,
nor the reference-gradient pass before the epoch) and the command's wall time. The runs
alternate, ``ROUNDS`` times, and the best of each is kept; the test prints them and
their ratio (``pytest benchmarks/test_bench_distributed.py -s``).

On a CPU the processes share the machine's cores: one process with all its threads
against N processes with ``cores / N`` threads each (``OMP_NUM_THREADS``). On a GPU node
each process takes one GPU (``ORTHOCORE_BENCH_DDP_PROCESSES``, default: every visible
GPU, else 2).
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from orthocore import models
from orthocore.checkpoint import save_checkpoint

IMAGES = int(os.environ.get("ORTHOCORE_BENCH_DDP_IMAGES", 1024))
PROCESSES = int(os.environ.get("ORTHOCORE_BENCH_DDP_PROCESSES", max(torch.cuda.device_count(), 2)))
ROUNDS = 2
CORES = os.cpu_count() or 1


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp-bench")
    rng = np.random.default_rng(0)
    data = root / "cifar"
    data.mkdir()
    per_batch = -(-IMAGES // 5)
    for name, count in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", 64)]:
        batch = {b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, count).tolist()}  # fmt: skip
        (data / name).write_bytes(pickle.dumps(batch, protocol=2))
    torch.manual_seed(0)
    save_checkpoint(root / "reference.ckpt", models.create("resnet20", 10), arch="resnet20", num_classes=10)
    return root


def _train(workspace, processes: int, out: str) -> tuple[float, float]:
    """``(images per second of the epoch, wall seconds of the command)``."""
    args = ["train", "--arch", "resnet20", "--data", f"cifar10:{workspace / 'cifar'}", "--reference",
            str(workspace / "reference.ckpt"), "--lambda", "1", "--batch-size", "128", "--max-epochs", "1",
            "--eval-every", "1", "--no-progress", "--out", str(workspace / out)]  # fmt: skip
    threads = max(1, CORES // processes) if not torch.cuda.is_available() else 1
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    launcher = [sys.executable, "-m", "orthocore"] if processes == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", "-m", "orthocore"]  # fmt: skip
    start = time.perf_counter()
    subprocess.run([*launcher, *args], env=env, check=True, capture_output=True, timeout=1800)
    wall = time.perf_counter() - start
    (record,) = [json.loads(line) for line in (workspace / out / "metrics.jsonl").read_text().splitlines()]
    return record["images_per_s"], wall


def test_orthogonal_epoch_throughput_one_vs_several_processes(workspace):
    results: dict[int, list[tuple[float, float]]] = {1: [], PROCESSES: []}
    for round_ in range(ROUNDS):
        for processes in results:
            results[processes].append(_train(workspace, processes, f"run-{processes}-{round_}"))
    best = {p: (max(r[0] for r in runs), min(r[1] for r in runs)) for p, runs in results.items()}
    one, several = best[1], best[PROCESSES]
    assert one[0] > 0 and several[0] > 0
    speedup = several[0] / one[0]
    print(f"\nResNet-20 orthogonal, global batch 128, {IMAGES} images: 1 process {one[0]:.1f} img/s "
          f"({one[1]:.1f} s wall); {PROCESSES} processes {several[0]:.1f} img/s ({several[1]:.1f} s wall); "
          f"throughput ratio {speedup:.2f}x")  # fmt: skip
