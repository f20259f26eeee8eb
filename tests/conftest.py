"""Shared fixtures. Triton kernels run on the CPU through Triton's interpreter when no
GPU is visible: the switch must be set before anything imports triton."""

import os

if "TRITON_INTERPRET" not in os.environ and not os.path.exists("/dev/nvidia0"):
    os.environ["TRITON_INTERPRET"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import settings  # noqa: E402

# Property-based tests (tests/test_fuzz.py): a short, derandomised run by default (CI), and
# a long one with `pytest --hypothesis-profile=thorough`.
settings.register_profile("ci", max_examples=40, derandomize=True, deadline=None, print_blob=True)
settings.register_profile("thorough", max_examples=500, deadline=None, print_blob=True)
settings.load_profile("ci")

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")),
]


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    """Every test that takes it runs on the CPU, and on CUDA where a GPU exists."""
    return torch.device(request.param)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def one_thread():
    """One intra-op thread: on a shared 2-core machine, two OpenMP threads can run small
    models many times slower, and a fixed thread count keeps CPU results reproducible
    between a test and the subprocesses it starts (which get OMP_NUM_THREADS=1)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def write_cifar10_batches(folder, per_batch: int = 8, label: int | None = 3, seed: int = 0):
    """A CIFAR-10 python-batches folder (``data_batch_1`` … ``data_batch_5``, ``test_batch``)
    of ``per_batch`` random images each, in the release's format (a pickled dict of
    bytes keys, uint8 (N, 3072) rows). ``label``: every image's class (one class: a few
    training steps teach any model to answer every image, so evaluations find images
    all models classify correctly), or None for random classes."""
    import pickle
    from pathlib import Path

    import numpy as np

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [label] * per_batch if label is not None else rng.integers(0, 10, per_batch).tolist()
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return folder


@pytest.fixture
def cifar10_folder(tmp_path):
    """Makes tiny CIFAR-10 folders under the test's temporary folder:
    ``cifar10_folder(name, per_batch=8, label=3, seed=0)`` (:func:`write_cifar10_batches`)."""
    return lambda name="cifar", **options: write_cifar10_batches(tmp_path / name, **options)
