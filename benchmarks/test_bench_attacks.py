"""ε sweeps: orthocore's one batched run over all ε against torchattacks looping over ε.

ResNet-20 (orthocore's model zoo, randomly initialised), 64 images 3x32x32, 8 ε values (0.5 % … 4 %).
For each attack both providers sit in one group (`make bench`). Each checks that the two
produce the same adversarial images (|difference| ≤ 1e-5 for at least 98 % of the
(ε, image) pairs, see MIN_IDENTICAL; the share measured is stored in ``extra_info``)
within their budgets; the speed-up (torchattacks' median / orthocore's median) is stored
in the orthocore run's ``extra_info``. PGD runs without its random start (torchattacks
draws its own); DI²-FGSM is left out for the same reason. Targets: FGSM ≥ 6x (one
gradient for all ε instead of 8), 10-step attacks ≥ 1.5x (the E·B batch fills a GPU; on
a CPU the convolutions cost the same per image at any batch size).

    .venv/bin/python -m pytest benchmarks/test_bench_attacks.py --benchmark-group-by=group
"""

import os

import pytest
import torch
import torchattacks
from _timing import DEVICE, synchronized
from torch import nn

from orthocore import attacks, models


def resnet20(num_classes: int = 10) -> nn.Module:
    """A randomly initialised ResNet-20 from orthocore's model zoo (normalisation inside)."""
    return models.create("resnet20", num_classes=num_classes)


EPS = [0.005 * k for k in range(1, 9)]
STEPS = 10
ROUNDS = {"fgsm": 5, "ifgsm": 2, "pgd": 2, "mifgsm": 2}
ROUNDS = {name: int(os.environ.get("ORTHOCORE_BENCH_ROUNDS", rounds)) for name, rounds in ROUNDS.items()}
WARMUP = {"fgsm": 1, "ifgsm": 0, "pgd": 0, "mifgsm": 0}  # a 10-step sweep is its own warm-up
# Share of (ε, image) pairs that must agree to 1e-5. Not 1: torchattacks' BIM projects with
# max/min against clean ± ε, orthocore (like torchattacks' PGD and MIFGSM) with
# clean + clamp(x − clean); the 1e-9 rounding difference can flip the sign of a gradient
# component that is ~0, and that image's trajectory then differs (98.6 % of the I-FGSM
# pairs agreed with the model zoo's ResNet-20; FGSM, PGD and MI-FGSM agree on all).
MIN_IDENTICAL = 0.98

ORTHOCORE = {
    "fgsm": lambda m, x, y: attacks.fgsm(m, x, y, eps=EPS),
    "ifgsm": lambda m, x, y: attacks.ifgsm(m, x, y, eps=EPS, steps=STEPS),
    "pgd": lambda m, x, y: attacks.pgd(m, x, y, eps=EPS, steps=STEPS, random_start=False),
    "mifgsm": lambda m, x, y: attacks.mifgsm(m, x, y, eps=EPS, steps=STEPS, decay=1.0),
}
TORCHATTACKS = {
    "fgsm": lambda m, e: torchattacks.FGSM(m, eps=e),
    "ifgsm": lambda m, e: torchattacks.BIM(m, eps=e, alpha=e / STEPS, steps=STEPS),
    "pgd": lambda m, e: torchattacks.PGD(m, eps=e, alpha=2.5 * e / STEPS, steps=STEPS, random_start=False),
    "mifgsm": lambda m, e: torchattacks.MIFGSM(m, eps=e, alpha=e / STEPS, steps=STEPS, decay=1.0),
}
MEDIANS: dict[tuple[str, str], float] = {}
OUTPUTS: dict[tuple[str, str], torch.Tensor] = {}


@pytest.fixture(scope="module")
def setup():
    # Full float32 on a GPU: with TF32 convolutions the two providers' batches (E·B vs B)
    # take different reduced-precision paths, and the outputs could not be compared.
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    model = resnet20().to(DEVICE).eval()
    images = torch.rand(64, 3, 32, 32, device=DEVICE)
    labels = torch.randint(0, 10, (64,), device=DEVICE)
    yield model, images, labels
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32


def _torchattacks_sweep(name, model, images, labels):
    return torch.stack([TORCHATTACKS[name](model, e)(images, labels) for e in EPS])  # (E, B, C, H, W)


@pytest.mark.parametrize("provider", ["torchattacks", "orthocore"])
@pytest.mark.parametrize("name", list(ORTHOCORE))
def test_eps_sweep(benchmark, setup, name, provider):
    model, images, labels = setup
    benchmark.group = f"{name} sweep, ResNet-20, 64 images x 8 eps, {DEVICE.type}"
    benchmark.extra_info["provider"] = provider
    ours = synchronized(lambda: ORTHOCORE[name](model, images, labels))
    peer = synchronized(lambda: _torchattacks_sweep(name, model, images, labels))
    timed = ours if provider == "orthocore" else peer
    out = benchmark.pedantic(timed, rounds=ROUNDS[name], warmup_rounds=WARMUP[name])
    OUTPUTS[name, provider] = out
    other_provider = "torchattacks" if provider == "orthocore" else "orthocore"
    if (name, other_provider) not in OUTPUTS:  # run alone (-k): compute the other provider's result
        OUTPUTS[name, other_provider] = (peer if provider == "orthocore" else ours)()
    other = OUTPUTS[name, other_provider]
    assert out.shape == (len(EPS), *images.shape)
    identical = ((out - other).abs().amax((2, 3, 4)) <= 1e-5).float().mean().item()  # over (E, B)
    benchmark.extra_info["identical_images"] = identical
    assert identical >= MIN_IDENTICAL, f"only {identical:.2%} of the adversarial images agree"
    budgets = torch.tensor(EPS, dtype=out.dtype, device=out.device)
    assert ((out - images).abs().amax((2, 3, 4)) <= budgets[:, None] + 1e-6).all()
    assert (out - images).abs().amax((1, 2, 3, 4)).tolist() == pytest.approx(EPS, abs=1e-6)  # budgets used
    MEDIANS[name, provider] = benchmark.stats.stats.median
    if provider == "orthocore" and (name, "torchattacks") in MEDIANS:
        benchmark.extra_info["speedup_vs_torchattacks"] = MEDIANS[name, "torchattacks"] / MEDIANS[name, "orthocore"]
