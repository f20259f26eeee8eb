"""One training step, ordinary vs orthogonal: ResNet-20 on a CIFAR-sized batch of 128,
the Fashion-MNIST CNN on a batch of 128 and the digits CNN on a batch of 64 (the
studies' settings).

Providers, side by side in the groups ``train-step-resnet20-b128``,
``train-step-fmnist_cnn-b128`` and ``train-step-digits_cnn-b64``:

- ``ordinary``: forward, cross-entropy, backward, SGD step (λ = 0 in the trainer);
- ``orthogonal``: the trainer's step, torch.func input gradient with double backprop,
  reference gradients from the cache (a precomputed tensor);
- ``orthogonal_naive``: the textbook version, ``autograd.grad(create_graph=True)`` and the
  reference's input gradient recomputed every step;
- ``orthogonal_sub_batch``: the trainer's sub-batch penalty (``penalty_batch`` = B/4
  random rows a step): cross-entropy on the whole batch, δ on the B/4 rows;
- ``orthogonal_bf16``: the orthogonal step under bfloat16 autocast (``autocast = "bf16"``;
  a GPU option, timed by the ratio test on a GPU only: on a CPU without bfloat16
  arithmetic it takes about 29x an ordinary step, and in the round-robin its long rounds
  only add noise to the others');
- ``ordinary_cuda_graph``, ``orthogonal_cuda_graph`` (GPU only): the ordinary and the
  orthogonal step replayed from one CUDA graph (``cuda_graph = true``,
  :class:`orthocore.train.graphs.CapturedStep`), captured before timing.

The ratio tests time the steps round-robin and print their ratios to the ordinary step
of this run (targets for ResNet-20: orthogonal ≤ 2.5x, sub-batch ≤ 1.8x).
Each timed step asserts that its loss is finite and the weights moved, so a broken step
cannot look fast.
"""

from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from _timing import DEVICE, as_the_trainer_allocates, optimizer_step, round_robin, synchronized
from torch import Tensor, nn

from orthocore import models
from orthocore.gradients import reference_gradients
from orthocore.ops import normalized_dot
from orthocore.train import orthogonal_loss
from orthocore.train.graphs import CapturedStep

CASES = {"resnet20": 128, "fmnist_cnn": 128, "digits_cnn": 64}  # architecture → batch
MALLOC = as_the_trainer_allocates()


@dataclass
class Setup:
    arch: str
    reference: nn.Module
    x: Tensor  # (B, C, H, W)
    y: Tensor  # (B,)
    cached: Tensor  # (1, B, C, H, W) the reference's input gradients


@pytest.fixture(scope="module", params=list(CASES))
def setup(request) -> Setup:
    arch, batch = request.param, CASES[request.param]
    torch.manual_seed(0)
    reference = models.create(arch).to(DEVICE).eval().requires_grad_(False)
    x = torch.rand(batch, *models.spec(arch).input_shape, device=DEVICE)
    y = torch.randint(0, 10, (batch,), device=DEVICE)
    return Setup(arch, reference, x, y, reference_gradients(reference, x, y).unsqueeze(0))


def _trained_model(setup: Setup) -> tuple[nn.Module, torch.optim.Optimizer]:
    """The model every provider trains (the same initial weights), and its SGD optimizer."""
    torch.manual_seed(1)
    model = models.create(setup.arch).to(DEVICE).train()
    return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def _stepper(setup: Setup, loss_of):
    """A model, and an SGD step minimising ``loss_of(model)``."""
    model, optimizer = _trained_model(setup)
    return model, optimizer_step(model, optimizer, loss_of)


def ordinary_step(s: Setup):
    return _stepper(s, lambda model: F.cross_entropy(model(s.x), s.y))


def orthogonal_step(s: Setup):
    return _stepper(s, lambda model: orthogonal_loss(model, s.x, s.y, s.cached, 1.0, "abs").loss)


def sub_batch_step(s: Setup):
    generator = torch.Generator().manual_seed(2)
    batch = len(s.y)

    def loss(model):
        rows = torch.randperm(batch, generator=generator)[: batch // 4].sort().values.to(DEVICE)
        return orthogonal_loss(model, s.x, s.y, s.cached[:, rows], 1.0, "abs", rows).loss

    return _stepper(s, loss)


def bf16_step(s: Setup):
    def loss(model):
        with torch.autocast(DEVICE.type, dtype=torch.bfloat16):
            return orthogonal_loss(model, s.x, s.y, s.cached, 1.0, "abs").loss

    return _stepper(s, loss)


def naive_step(s: Setup):
    def loss(model):
        xr = s.x.clone().requires_grad_()
        (g_ref,) = torch.autograd.grad(F.cross_entropy(s.reference(xr), s.y, reduction="sum"), xr)
        xm = s.x.clone().requires_grad_()
        logits = model(xm)
        (g,) = torch.autograd.grad(F.cross_entropy(logits, s.y, reduction="sum"), xm, create_graph=True)
        return F.cross_entropy(logits, s.y) + normalized_dot(g_ref, g).abs().mean()

    return _stepper(s, loss)


def _captured_stepper(s: Setup, lam: float):
    """The trainer's step with ``cuda_graph``: warmed up, captured and replayed once
    before it is timed, so that every timed call is a replay."""
    model, optimizer = _trained_model(s)

    def train_step(x, y, reference_grads):
        loss = orthogonal_loss(model, x, y, reference_grads, lam, "abs").loss
        loss.backward()
        optimizer.step()
        return (loss.detach(),)

    captured = CapturedStep(train_step, optimizer, DEVICE)
    step = synchronized(lambda: captured(x=s.x, y=s.y, reference_grads=s.cached if lam else None)[0].clone())
    for _ in range(captured.warmup + 2):  # the warm-up steps, the capture, one replay
        step()
    return model, step


PROVIDERS = {"ordinary": ordinary_step, "orthogonal": orthogonal_step, "orthogonal_naive": naive_step,
             "orthogonal_sub_batch": sub_batch_step, "orthogonal_bf16": bf16_step}  # fmt: skip
if DEVICE.type == "cuda":
    PROVIDERS |= {"ordinary_cuda_graph": lambda s: _captured_stepper(s, 0.0),
                  "orthogonal_cuda_graph": lambda s: _captured_stepper(s, 1.0)}  # fmt: skip


def _checked(model, step):
    before = [p.detach().clone() for p in model.parameters()]
    loss = step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_train_step(benchmark, setup, provider):
    benchmark.group = f"train-step-{setup.arch}-b{len(setup.y)}"
    benchmark.extra_info["provider"] = provider
    model, step = PROVIDERS[provider](setup)
    _checked(model, step)
    benchmark.pedantic(step, rounds=5, iterations=1, warmup_rounds=1)


def test_orthogonal_over_ordinary_ratio(setup):
    """The steps timed round-robin (so that load from other processes hits all of them
    alike); prints the ratios to the ordinary step's minimum time."""
    timed = [name for name in PROVIDERS if DEVICE.type == "cuda" or name != "orthogonal_bf16"]
    steps = {name: PROVIDERS[name](setup) for name in timed}
    for model, step in steps.values():
        _checked(model, step)  # also the warm-up
    rounds = {"resnet20": 5, "fmnist_cnn": 20}.get(setup.arch, 50)
    best = round_robin({name: step for name, (_, step) in steps.items()}, rounds)
    ratio = {name: best[name] / best["ordinary"] for name in steps}
    batch = len(setup.y)
    print(
        f"\n[{DEVICE.type}, {torch.get_num_threads()} threads, {MALLOC}] {setup.arch} b{batch} step, min of {rounds} round-robin: "
        f"ordinary {best['ordinary'] * 1e3:.1f} ms, orthogonal {ratio['orthogonal']:.2f}x, "
        f"naive {ratio['orthogonal_naive']:.2f}x, sub-batch k={batch // 4} {ratio['orthogonal_sub_batch']:.2f}x"
        + (f", bf16 autocast {ratio['orthogonal_bf16']:.2f}x" if "orthogonal_bf16" in ratio else "")
    )
    if "orthogonal_cuda_graph" in best:
        print(f"[cuda graphs] ordinary {best['ordinary_cuda_graph'] * 1e3:.2f} ms "
              f"({ratio['ordinary_cuda_graph']:.2f}x of the eager ordinary step), orthogonal "
              f"{ratio['orthogonal_cuda_graph']:.2f}x of the eager ordinary step, "
              f"{best['orthogonal_cuda_graph'] / best['ordinary_cuda_graph']:.2f}x of the captured one")
    # strictly more work than ordinary; not slower than the naive step beyond noise
    assert 1.0 < ratio["orthogonal"] < ratio["orthogonal_naive"] * 1.5
    assert ratio["orthogonal_sub_batch"] > 1.0
