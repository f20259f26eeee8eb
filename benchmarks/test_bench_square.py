"""Square Attack ε sweeps: orthocore's one batched search over all ε, and its monotone
sweep (the security evaluation's: an image fooled at a smaller ε is not searched again),
against torchattacks 3.5.1's ``Square`` looping over ε, at the same query budget.

ResNet-20 (orthocore's model zoo, randomly initialised), 64 images 3x32x32, 8 ε values
(0.5 % … 4 %), L∞, margin loss, 50 queries; labels are the model's own predictions, so
every image is searched. The libraries draw differently, so their images are not
compared one by one: each timed run checks its ε-ball and [0, 1], and orthocore's that
the budget is used. Every provider's fooling ratio (mean over ε) is stored beside its
time in ``extra_info`` and printed, so that speed is never bought with strength; the
monotone sweep draws as the batched one does and fools every image it fools. The
speed-ups are stored in the orthocore runs' ``extra_info``. Query-based search is
forward-bound: batching ε saves no model work, only the per-pass overhead; the monotone
sweep saves the searches of the images a smaller ε already fooled.

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
FOOLED: dict[str, torch.Tensor] = {}


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = models.create("resnet20").to(DEVICE).eval()
    images = torch.rand(64, 3, 32, 32, device=DEVICE)
    with torch.no_grad():
        labels = model(images).argmax(1)
    return model, images, labels


PROVIDERS = ["torchattacks", "orthocore", "orthocore_monotone"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_square_sweep(benchmark, setup, provider):
    model, images, labels = setup
    benchmark.group = f"square sweep, ResNet-20, 64 images x 8 eps, {QUERIES} queries, {DEVICE.type}"
    benchmark.extra_info["provider"] = provider

    def ours(monotone):
        generator = torch.Generator().manual_seed(0)
        return attacks.square(model, images, labels, eps=EPS, n_queries=QUERIES, monotone=monotone, generator=generator)

    def peer():
        return torch.stack([torchattacks.Square(model, eps=e, n_queries=QUERIES, seed=0)(images, labels) for e in EPS])

    run = {"torchattacks": peer, "orthocore": lambda: ours(False), "orthocore_monotone": lambda: ours(True)}[provider]
    out = benchmark.pedantic(synchronized(run), rounds=ROUNDS, warmup_rounds=0)
    assert out.shape == (len(EPS), *images.shape)
    budgets = torch.tensor(EPS, dtype=out.dtype, device=out.device)
    sizes = (out - images).abs().amax((2, 3, 4))  # (E, B)
    assert (sizes <= budgets[:, None] + 1e-6).all() and out.min() >= 0 and out.max() <= 1
    if provider == "orthocore":  # torchattacks returns the clean image where its search fails
        assert sizes.amax(1).tolist() == pytest.approx(EPS, abs=1e-6)  # the budget is used
    with torch.no_grad():
        FOOLED[provider] = torch.stack([model(adversarial).argmax(1) != labels for adversarial in out])  # (E, B)
    benchmark.extra_info["fooling_percent"] = 100 * float(FOOLED[provider].float().mean())
    if provider == "orthocore_monotone" and "orthocore" in FOOLED:  # the same draws: every image the batched sweep fools, and more
        assert bool((FOOLED[provider] >= FOOLED["orthocore"]).all())
    MEDIANS[provider] = benchmark.stats.stats.median
    if provider != "torchattacks" and "torchattacks" in MEDIANS:
        benchmark.extra_info["speedup_vs_torchattacks"] = MEDIANS["torchattacks"] / MEDIANS[provider]
    if provider == PROVIDERS[-1] and len(MEDIANS) == len(PROVIDERS):
        print("\n[square sweep] " + "; ".join(
            f"{name}: {MEDIANS[name] * 1e3:.0f} ms ({MEDIANS['torchattacks'] / MEDIANS[name]:.2f}x torchattacks), "
            f"fooled {100 * float(FOOLED[name].float().mean()):.1f} %" for name in PROVIDERS))  # fmt: skip
