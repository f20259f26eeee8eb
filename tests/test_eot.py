"""Randomized defenses under keyed draws (orthocore.draws) and EOT in the attack loop:
the draws of a row depend on its key alone, n = 1 is one draw, the estimate's variance
falls with n, and the attacks give the same result however they are chunked."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from orthocore import draws
from orthocore.attacks import PGD, Square
from orthocore.attacks._loop import LoopSettings, _Draws, _input_gradient
from orthocore.defenses import TVDenoise, defended
from orthocore.evaluate.batches import predictions

pytestmark = pytest.mark.usefixtures("one_thread")

_MASK = (1 << 64) - 1


def _splitmix_finaliser(z: int) -> int:
    """splitmix64's finaliser on Python integers: the oracle of draws.mix."""
    z &= _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def test_mix_is_splitmix64_bit_for_bit():
    values = [0, 1, -1, 2**62, -(2**63), 123456789012345, 2**63 - 1, -987654321]
    mixed = draws.mix(torch.tensor(values, dtype=torch.int64)).tolist()
    assert [v & _MASK for v in mixed] == [_splitmix_finaliser(v) for v in values]


def test_uniform_draws_depend_on_the_key_alone():
    keys = draws.row_keys(3, torch.arange(50), step=4)
    u = draws.uniform(keys, (1, 6, 6))
    assert u.shape == (50, 1, 6, 6) and u.dtype == torch.float32
    assert torch.equal(u[17:30], draws.uniform(keys[17:30], (1, 6, 6)))  # any batching
    assert torch.equal(u[[5, 2]], draws.uniform(keys[[5, 2]], (1, 6, 6)))
    assert not torch.equal(u, draws.uniform(draws.row_keys(3, torch.arange(50), step=5), (1, 6, 6)))
    assert 0 <= float(u.min()) and float(u.max()) < 1
    many = draws.uniform(draws.row_keys(0, torch.arange(2000), step=0), (64,))
    assert abs(float(many.mean()) - 0.5) < 0.01 and abs(float(many.std()) - 12**-0.5) < 0.01


def test_keys_for_another_batch_size_are_refused():
    with draws.keyed(draws.row_keys(0, torch.arange(3), 0)):
        with pytest.raises(ValueError, match="3 keys were set for a batch of 4 rows"):
            TVDenoise(0.05, keep_prob=0.5, iters=2)(torch.rand(4, 1, 6, 6))


def test_a_randomized_defense_draws_by_key():
    tv, x = TVDenoise(0.05, keep_prob=0.5, iters=5, rounds=1), torch.rand(6, 1, 8, 8)
    keys = draws.row_keys(1, torch.arange(6), step=0)
    with draws.keyed(keys):
        first = tv(x)
    with draws.keyed(keys[3:]):
        assert torch.equal(tv(x[3:]), first[3:])
    with draws.keyed(draws.row_keys(1, torch.arange(6), step=1)):
        assert not torch.equal(tv(x), first)
    assert tv.randomized and not TVDenoise(0.05).randomized
    assert tv.label == "TVM-Weight=0.05, keep=0.5"


class _Linear(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 4))

    def forward(self, x):
        return self.net(x)


@pytest.fixture
def randomized():
    return defended(_Linear().eval(), TVDenoise(0.05, keep_prob=0.5, iters=5, rounds=1), bpda="identity")


def _gradient(model, x, y, eot: int, seed: int, step: int = 0):
    settings = LoopSettings(eot=eot)
    grad, fooled = _input_gradient(model, x, y, settings, None, step, torch.arange(len(x)), _Draws(seed, 0))
    return grad, fooled


def test_eot_with_one_sample_is_one_keyed_draw(randomized):
    x, y = torch.rand(5, 1, 8, 8), torch.tensor([0, 1, 2, 3, 0])
    grad, fooled = _gradient(randomized, x, y, eot=1, seed=9, step=2)
    z = x.clone().requires_grad_(True)
    with draws.keyed(draws.row_keys(9, torch.arange(5), 2, 0, 0)):
        logits = randomized(z)
    (expected,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), z)
    assert torch.equal(grad, expected)
    assert torch.equal(fooled, logits.argmax(1) != y)


def test_eot_is_the_mean_over_its_draws(randomized):
    x, y = torch.rand(3, 1, 8, 8), torch.tensor([0, 1, 2])
    grad, _ = _gradient(randomized, x, y, eot=4, seed=5)
    single = []
    for draw in range(4):
        z = x.clone().requires_grad_(True)
        with draws.keyed(draws.row_keys(5, torch.arange(3), 0, 0, draw)):
            loss = F.cross_entropy(randomized(z), y, reduction="sum")
        single.append(torch.autograd.grad(loss, z)[0])
    assert torch.allclose(grad, torch.stack(single).mean(0), atol=1e-6)


def test_the_estimates_variance_falls_with_the_number_of_draws(randomized):
    x, y = torch.rand(2, 1, 8, 8), torch.tensor([0, 1])
    variance = {}
    for eot in (1, 4, 16):
        estimates = torch.stack([_gradient(randomized, x, y, eot=eot, seed=seed)[0] for seed in range(40)])
        variance[eot] = float(estimates.var(0).sum())
    assert variance[16] < variance[4] < variance[1]
    assert variance[16] < variance[1] / 6  # about 1/16 in expectation


@pytest.mark.parametrize("restarts", [1, 2])
def test_pgd_with_eot_does_not_depend_on_chunking(randomized, restarts):
    x, y = torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 3, 0, 1])

    def run(max_batch):
        attack = PGD(randomized, [0.05, 0.2], steps=4, restarts=restarts, eot=3, stop_when_fooled=True,
                     generator=torch.Generator().manual_seed(11), max_batch=max_batch)  # fmt: skip
        return attack(x, y)

    assert torch.equal(run(None), run(3))


def test_square_on_a_randomized_model_does_not_depend_on_chunking(randomized):
    x, y = torch.rand(5, 1, 8, 8), torch.tensor([0, 1, 2, 3, 0])

    def run(max_batch):
        return Square(randomized, [0.05, 0.2], n_queries=15, generator=torch.Generator().manual_seed(4),
                      max_batch=max_batch)(x, y)  # fmt: skip

    assert torch.equal(run(None), run(2))


def test_evaluation_predictions_are_keyed_per_image_and_eps(randomized):
    images = torch.rand(2, 6, 1, 8, 8)  # (E, b, ...)
    first = predictions(randomized, images, 3, torch.arange(6))
    assert first.shape == (2, 6)
    assert torch.equal(predictions(randomized, images[:, 2:], 3, torch.arange(2, 6)), first[:, 2:])
