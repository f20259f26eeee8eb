"""Square Attack ε sweeps: orthocore's one batched search over all ε, and its monotone
sweep (the security evaluation's: an image fooled at a smaller ε is not searched again),
against torchattacks 3.5.1's ``Square`` looping over ε, at the same query budget. L∞,
margin loss, 8 ε, two cases:

* ``resnet20-random``: ResNet-20 (orthocore's model zoo, randomly initialised), 64 images
  3x32x32, ε 0.5 % … 4 %, 50 queries; labels are the model's own predictions, so every
  image is searched and none is fooled: it measures the cost of a query and nothing else.
* ``digits-trained``: the digits demo's CNN trained for a few seconds
  (``_models.trained_digits_cnn``), the 340-odd validation images it classifies
  correctly, ε 2.5 % … 20 %, 1,000 queries (the security evaluation's budget): the
  attack fools a share of the images that grows with ε, as it does in a study, so the
  monotone sweep has searches to skip.

The libraries draw differently, so their images are not compared one by one: each timed run checks its ε-ball and [0, 1], and orthocore's that
the budget is used. Every provider's fooling ratio (mean over ε) is stored beside its
time in ``extra_info`` and printed, so that speed is never bought with strength; the
monotone sweep draws as the batched one does and fools every image it fools. The
speed-ups are stored in the orthocore runs' ``extra_info``. Query-based search is
forward-bound: batching ε saves no model work, only the per-pass overhead; the monotone
sweep saves the searches of the images a smaller ε already fooled.

    .venv/bin/python -m pytest benchmarks/test_bench_square.py --benchmark-group-by=group
"""

import os
from dataclasses import dataclass

import pytest
import torch
import torchattacks
from _models import trained_digits_cnn
from _timing import DEVICE, synchronized
from torch import Tensor, nn

from orthocore import attacks, models

ROUNDS = int(os.environ.get("ORTHOCORE_BENCH_ROUNDS", 2))
MEDIANS: dict[tuple[str, str], float] = {}
FOOLED: dict[tuple[str, str], Tensor] = {}


@dataclass
class Case:
    name: str
    model: nn.Module
    images: Tensor  # (B, C, H, W)
    labels: Tensor  # (B,)
    eps: list[float]
    queries: int


def _random_resnet20() -> Case:
    torch.manual_seed(0)
    model = models.create("resnet20").to(DEVICE).eval()
    images = torch.rand(64, 3, 32, 32, device=DEVICE)
    with torch.no_grad():
        labels = model(images).argmax(1)
    return Case("resnet20-random", model, images, labels, [0.005 * k for k in range(1, 9)], 50)


def _trained_digits() -> Case:
    model, images, labels = trained_digits_cnn()
    return Case("digits-trained", model.to(DEVICE), images.to(DEVICE), labels.to(DEVICE),
                [0.025 * k for k in range(1, 9)], 1000)  # fmt: skip


@pytest.fixture(scope="module", params=[_random_resnet20, _trained_digits], ids=["resnet20-random", "digits-trained"])
def setup(request) -> Case:
    return request.param()


PROVIDERS = ["torchattacks", "orthocore", "orthocore_monotone"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_square_sweep(benchmark, setup, provider):
    case = setup
    model, images, labels, eps, queries = case.model, case.images, case.labels, case.eps, case.queries
    benchmark.group = (f"square sweep, {case.name}, {len(labels)} images x {len(eps)} eps, {queries} queries, "
                       f"{DEVICE.type}")  # fmt: skip
    benchmark.extra_info["provider"] = provider

    def ours(monotone):
        generator = torch.Generator().manual_seed(0)
        return attacks.square(model, images, labels, eps=eps, n_queries=queries, monotone=monotone, generator=generator)

    def peer():
        return torch.stack([torchattacks.Square(model, eps=e, n_queries=queries, seed=0)(images, labels) for e in eps])

    run = {"torchattacks": peer, "orthocore": lambda: ours(False), "orthocore_monotone": lambda: ours(True)}[provider]
    out = benchmark.pedantic(synchronized(run), rounds=ROUNDS, warmup_rounds=0)
    assert out.shape == (len(eps), *images.shape)
    budgets = torch.tensor(eps, dtype=out.dtype, device=out.device)
    sizes = (out - images).abs().amax((2, 3, 4))  # (E, B)
    assert (sizes <= budgets[:, None] + 1e-6).all() and out.min() >= 0 and out.max() <= 1
    if provider == "orthocore":  # torchattacks returns the clean image where its search fails
        assert sizes.amax(1).tolist() == pytest.approx(eps, abs=1e-6)  # the budget is used
    with torch.no_grad():
        fooled = torch.stack([model(adversarial).argmax(1) != labels for adversarial in out])  # (E, B)
    FOOLED[case.name, provider] = fooled
    benchmark.extra_info["fooling_percent"] = 100 * float(fooled.float().mean())
    benchmark.extra_info["fooling_percent_per_eps"] = (100 * fooled.float().mean(1)).tolist()
    batched = FOOLED.get((case.name, "orthocore"))
    if provider == "orthocore_monotone" and batched is not None:  # the same draws: every image the batched sweep fools
        assert bool((fooled >= batched).all())
    MEDIANS[case.name, provider] = benchmark.stats.stats.median
    peer_median = MEDIANS.get((case.name, "torchattacks"))
    if provider != "torchattacks" and peer_median is not None:
        benchmark.extra_info["speedup_vs_torchattacks"] = peer_median / MEDIANS[case.name, provider]
    if provider == PROVIDERS[-1] and all((case.name, name) in MEDIANS for name in PROVIDERS):
        print(f"\n[square sweep, {case.name}] " + "; ".join(
            f"{name}: {MEDIANS[case.name, name] * 1e3:.0f} ms "
            f"({MEDIANS[case.name, 'torchattacks'] / MEDIANS[case.name, name]:.2f}x torchattacks), fooled "
            f"{100 * float(FOOLED[case.name, name].float().mean()):.1f} % (per ε: "
            f"{', '.join(f'{r:.0f}' for r in (100 * FOOLED[case.name, name].float().mean(1)).tolist())})"
            for name in PROVIDERS))  # fmt: skip
