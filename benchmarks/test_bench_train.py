"""One training step of ResNet-20 on a CIFAR-sized batch of 128: ordinary vs orthogonal.

Providers, side by side in the group ``train-step-resnet20-b128``:

- ``ordinary``: forward, cross-entropy, backward, SGD step (λ = 0 in the trainer);
- ``orthogonal``: the trainer's step, torch.func input gradient with double backprop,
  reference gradients from the cache (a precomputed tensor);
- ``orthogonal_naive``: the textbook version, ``autograd.grad(create_graph=True)`` and the
  reference's input gradient recomputed every step;
- ``orthogonal_sub_batch``: the trainer's sub-batch penalty (``penalty_batch`` = B/4 = 32
  random rows a step): cross-entropy on the whole batch, δ on the 32 rows.

The last test times the steps round-robin and prints their ratios to the ordinary step
of this run (targets: orthogonal ≤ 2.5x, sub-batch ≤ 1.8x).
Each timed step asserts that its loss is finite and the weights moved, so a broken step
cannot look fast.
"""

import time

import pytest
import torch
import torch.nn.functional as F

from orthocore import models
from orthocore.gradients import reference_gradients
from orthocore.ops import normalized_dot
from orthocore.train import orthogonal_loss

BATCH = 128
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _sync():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    reference = models.create("resnet20").to(DEVICE).eval().requires_grad_(False)
    x = torch.rand(BATCH, 3, 32, 32, device=DEVICE)
    y = torch.randint(0, 10, (BATCH,), device=DEVICE)
    cached = reference_gradients(reference, x, y).unsqueeze(0)  # (1, B, 3, 32, 32)
    return reference, x, y, cached


def _model_and_optimizer():
    torch.manual_seed(1)
    model = models.create("resnet20").to(DEVICE).train()
    return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def ordinary_step(setup):
    _, x, y, _ = setup
    model, optimizer = _model_and_optimizer()

    def step():
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        _sync()
        return loss.detach()

    return model, step


def orthogonal_step(setup):
    _, x, y, cached = setup
    model, optimizer = _model_and_optimizer()

    def step():
        result = orthogonal_loss(model, x, y, cached, 1.0, "abs")
        optimizer.zero_grad(set_to_none=True)
        result.loss.backward()
        optimizer.step()
        _sync()
        return result.loss.detach()

    return model, step


def sub_batch_step(setup):
    _, x, y, cached = setup
    model, optimizer = _model_and_optimizer()
    generator = torch.Generator().manual_seed(2)

    def step():
        rows = torch.randperm(BATCH, generator=generator)[: BATCH // 4].sort().values.to(DEVICE)
        result = orthogonal_loss(model, x, y, cached[:, rows], 1.0, "abs", rows)
        optimizer.zero_grad(set_to_none=True)
        result.loss.backward()
        optimizer.step()
        _sync()
        return result.loss.detach()

    return model, step


def naive_step(setup):
    reference, x, y, _ = setup
    model, optimizer = _model_and_optimizer()

    def step():
        xr = x.clone().requires_grad_()
        (g_ref,) = torch.autograd.grad(F.cross_entropy(reference(xr), y, reduction="sum"), xr)
        xm = x.clone().requires_grad_()
        logits = model(xm)
        (g,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), xm, create_graph=True)
        loss = F.cross_entropy(logits, y) + normalized_dot(g_ref, g).abs().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        _sync()
        return loss.detach()

    return model, step


PROVIDERS = {"ordinary": ordinary_step, "orthogonal": orthogonal_step, "orthogonal_naive": naive_step,
             "orthogonal_sub_batch": sub_batch_step}  # fmt: skip


def _checked(model, step):
    before = model.net.linear.weight.detach().clone()
    loss = step()
    assert torch.isfinite(loss)
    assert not torch.equal(before, model.net.linear.weight)


@pytest.mark.parametrize("provider", list(PROVIDERS))
@pytest.mark.benchmark(group="train-step-resnet20-b128")
def test_train_step(benchmark, setup, provider):
    model, step = PROVIDERS[provider](setup)
    _checked(model, step)
    benchmark.pedantic(step, rounds=5, iterations=1, warmup_rounds=1)


def test_orthogonal_over_ordinary_ratio(setup):
    """The steps timed round-robin (so that load from other processes hits all of them
    alike); prints the ratios to the ordinary step's minimum time."""
    steps = {name: make(setup) for name, make in PROVIDERS.items()}
    times: dict[str, list[float]] = {name: [] for name in steps}
    for model, step in steps.values():
        _checked(model, step)  # also the warm-up
    for _ in range(5):
        for name, (_, step) in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    best = {name: min(values) for name, values in times.items()}
    ratio, naive = best["orthogonal"] / best["ordinary"], best["orthogonal_naive"] / best["ordinary"]
    sub_batch = best["orthogonal_sub_batch"] / best["ordinary"]
    print(
        f"\n[{DEVICE.type}, {torch.get_num_threads()} threads] ResNet-20 b{BATCH} step, min of 5 round-robin: "
        f"ordinary {best['ordinary'] * 1e3:.1f} ms, orthogonal {ratio:.2f}x, naive {naive:.2f}x, "
        f"sub-batch k={BATCH // 4} {sub_batch:.2f}x (targets: orthogonal <= 2.5x, sub-batch <= 1.8x)"
    )
    assert 1.0 < ratio < naive * 1.5  # strictly more work than ordinary; not slower than the naive step beyond noise
    assert 1.0 < sub_batch < ratio * 1.1  # an ordinary step plus a smaller orthogonal one
