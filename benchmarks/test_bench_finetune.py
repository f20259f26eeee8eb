"""The paper's ImageNet protocol as a benchmark: VGG-16 at 224×224 with only its last
fully-connected layer trained (``--finetune``), the orthogonal step against the ordinary
fine-tune step.

Weights are random (none can be downloaded); the step's cost does not depend on them.
Batch 32 (the paper's) on a GPU; on a CPU batch 2, so that a round takes seconds
(``ORTHOCORE_BENCH_FINETUNE_BATCH`` overrides). The ordinary fine-tune step runs the
frozen features without a graph to the head; the orthogonal step needs the input
gradient, so its double backward goes through the whole network even though only the
head's parameters are trained: that is where the paper's 22x comes from.

Each timed step asserts that its loss is finite and the head moved.
"""

import os

import pytest
import torch
import torch.nn.functional as F
from _timing import DEVICE, as_the_trainer_allocates, optimizer_step, round_robin

from orthocore import models
from orthocore.gradients import reference_gradients
from orthocore.train import orthogonal_loss

ARCH = "imagenet_vgg16"
MALLOC = as_the_trainer_allocates()
CLASSES = 1000
BATCH = int(os.environ.get("ORTHOCORE_BENCH_FINETUNE_BATCH", 32 if DEVICE.type == "cuda" else 2))


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    reference = models.create(ARCH, CLASSES).to(DEVICE).eval().requires_grad_(False)
    x = torch.rand(BATCH, *models.spec(ARCH).input_shape, device=DEVICE)
    y = torch.randint(0, CLASSES, (BATCH,), device=DEVICE)
    return x, y, reference_gradients(reference, x, y).unsqueeze(0)


def _finetune_step(setup, lam):
    """The trainer's fine-tune step: head-only parameters, frozen part in eval mode."""
    x, y, cached = setup
    torch.manual_seed(1)
    model = models.create(ARCH, CLASSES).to(DEVICE)
    parameters = models.prepare_finetuning(model, ARCH)
    model.train()
    optimizer = torch.optim.SGD(parameters, lr=0.01, momentum=0.9)

    def loss_of(model):
        return orthogonal_loss(model, x, y, cached, lam, "abs").loss if lam else F.cross_entropy(model(x), y)

    return parameters[0], optimizer_step(model, optimizer, loss_of)


PROVIDERS = {"ordinary_finetune": 0.0, "orthogonal_finetune": 1.0}


def _checked(head, step):
    before = head.detach().clone()
    assert torch.isfinite(step())
    assert not torch.equal(before, head)


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_finetune_step(benchmark, setup, provider):
    benchmark.group = f"finetune-step-{ARCH}-b{BATCH}"
    benchmark.extra_info["provider"] = provider
    head, step = _finetune_step(setup, PROVIDERS[provider])
    _checked(head, step)
    benchmark.pedantic(step, rounds=3, iterations=1, warmup_rounds=1)


def test_orthogonal_over_ordinary_finetune_ratio(setup):
    """Both steps timed round-robin; prints the ratio of their minimum times."""
    steps = {name: _finetune_step(setup, lam) for name, lam in PROVIDERS.items()}
    for head, step in steps.values():
        _checked(head, step)  # also the warm-up
    best = round_robin({name: step for name, (_, step) in steps.items()}, 3)
    ratio = best["orthogonal_finetune"] / best["ordinary_finetune"]
    print(
        f"\n[{DEVICE.type}, {torch.get_num_threads()} threads, {MALLOC}] {ARCH} fine-tune b{BATCH} step, min of 3 round-robin: "
        f"ordinary {best['ordinary_finetune'] * 1e3:.0f} ms, orthogonal {best['orthogonal_finetune'] * 1e3:.0f} ms "
        f"({ratio:.1f}x)"
    )
    assert ratio > 1.0
