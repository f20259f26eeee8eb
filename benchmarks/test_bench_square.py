"""Square Attack ε sweeps: orthocore's one batched search over all ε against torchattacks
3.5.1's ``Square`` looping over ε, at the same query budget.

ResNet-20 (orthocore's model zoo, randomly initialised), 64 images 3x32x32, 8 ε values
(0.5 % … 4 %), L∞, margin loss, 50 queries; labels are the model's own predictions, so
every image is searched. Both searches draw differently, so their images are not
compared one by one: each timed run checks its ε-ball and [0, 1], and orthocore's that
the budget is used. The speed-up is stored in the orthocore run's ``extra_info``. Target on the CPU:
≥ 1.5x. Query-based search is forward-bound: batching ε saves no model work, only the
per-pass overhead, so on a CPU the ratio is what chunked passes gain over the loop's.

    .venv/bin/python -m pytest benchmarks/test_bench_square.py --benchmark-group-by=group
"""

import os

import pytest
import torch
import torchattacks
from _timing import DEVICE, synchronized

from orthocore import attacks, models

EPS = [0.005 * k for k in range(1, 9)]
QUERIES = 50
ROUNDS = int(os.environ.get("ORTHOCORE_BENCH_ROUNDS", 2))
MEDIANS: dict[str, float] = {}


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = models.create("resnet20").to(DEVICE).eval()
    images = torch.rand(64, 3, 32, 32, device=DEVICE)
    with torch.no_grad():
        labels = model(images).argmax(1)
    return model, images, labels


@pytest.mark.parametrize("provider", ["torchattacks", "orthocore"])
def test_square_sweep(benchmark, setup, provider):
    model, images, labels = setup
    benchmark.group = f"square sweep, ResNet-20, 64 images x 8 eps, {QUERIES} queries, {DEVICE.type}"
    benchmark.extra_info["provider"] = provider

    def ours():
        generator = torch.Generator().manual_seed(0)
        return attacks.square(model, images, labels, eps=EPS, n_queries=QUERIES, generator=generator)

    def peer():
        return torch.stack([torchattacks.Square(model, eps=e, n_queries=QUERIES, seed=0)(images, labels) for e in EPS])

    out = benchmark.pedantic(synchronized(ours if provider == "orthocore" else peer), rounds=ROUNDS, warmup_rounds=0)
    assert out.shape == (len(EPS), *images.shape)
    budgets = torch.tensor(EPS, dtype=out.dtype, device=out.device)
    sizes = (out - images).abs().amax((2, 3, 4))  # (E, B)
    assert (sizes <= budgets[:, None] + 1e-6).all() and out.min() >= 0 and out.max() <= 1
    if provider == "orthocore":  # torchattacks returns the clean image where its search fails
        assert sizes.amax(1).tolist() == pytest.approx(EPS, abs=1e-6)  # the budget is used
    MEDIANS[provider] = benchmark.stats.stats.median
    if provider == "orthocore" and "torchattacks" in MEDIANS:
        benchmark.extra_info["speedup_vs_torchattacks"] = MEDIANS["torchattacks"] / MEDIANS["orthocore"]
