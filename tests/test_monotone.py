"""Monotone (worst-case) ε sweeps of PGD and Square: the fooled images of a larger ε
include those of every smaller one, each point stays in its own ball, the queries are
those actually made, and the sweep fools every image the independent sweep fools."""

import pytest
import torch
from torch import nn

from orthocore.attacks import PGD, Square

pytestmark = pytest.mark.usefixtures("one_thread")

EPS = [0.2, 0.05, 0.1, 0.02]  # given out of order: the results follow this order


@pytest.fixture(scope="module")
def problem():
    """A small classifier and images it classifies correctly, with margins spread so that
    the fooling ratio climbs over the ε grid."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(6 * 8 * 8, 4)).eval()
    images = torch.rand(120, 1, 8, 8)
    with torch.no_grad():
        labels = model(images).argmax(1)
    return model, images, labels


def _fooled(model, adversarial, labels):  # (E, B)
    with torch.no_grad():
        return torch.stack([model(a).argmax(1) != labels for a in adversarial])


ATTACKS = {
    "pgd": lambda model, monotone: PGD(model, EPS, steps=8, restarts=2, stop_when_fooled=True, monotone=monotone,
                                       generator=torch.Generator().manual_seed(3)),
    "pgd-last-iterate": lambda model, monotone: PGD(model, EPS, steps=8, monotone=monotone,
                                                    generator=torch.Generator().manual_seed(3)),
    "square": lambda model, monotone: Square(model, EPS, n_queries=60, monotone=monotone,
                                             generator=torch.Generator().manual_seed(3)),
}  # fmt: skip


@pytest.mark.parametrize("name", ATTACKS)
def test_a_monotone_sweep_is_nested_and_at_least_as_strong(problem, name):
    model, images, labels = problem
    monotone = ATTACKS[name](model, True)(images, labels)
    independent = ATTACKS[name](model, False)(images, labels)
    assert monotone.shape == (len(EPS), *images.shape)
    for e, eps in enumerate(EPS):
        assert float((monotone[e] - images).abs().max()) <= eps + 1e-6
    fooled, alone = _fooled(model, monotone, labels), _fooled(model, independent, labels)
    order = sorted(range(len(EPS)), key=EPS.__getitem__)
    for smaller, larger in zip(order, order[1:]):
        assert bool((fooled[larger] >= fooled[smaller]).all()), "an image fooled at a smaller ε is fooled at a larger"
        kept = fooled[smaller]
        assert torch.equal(monotone[larger][kept], monotone[smaller][kept]), "and keeps its point"
    # every image the independent sweep fools at an ε (same draws), and more where a smaller ε fooled it
    assert bool((fooled >= alone).all())
    counts = fooled.sum(1)
    assert 0 < counts[order[0]] < counts[order[-1]] < len(labels), "the grid should span easy and hard"


def test_square_counts_only_the_queries_it_made(problem):
    model, images, labels = problem
    attack = Square(model, EPS, n_queries=60, monotone=True, generator=torch.Generator().manual_seed(3))
    adversarial = attack(images, labels)
    fooled = _fooled(model, adversarial, labels)
    order = sorted(range(len(EPS)), key=EPS.__getitem__)
    assert int(attack.queries.max()) <= 60 and attack.queries.shape == (len(EPS), len(labels))
    for smaller, larger in zip(order, order[1:]):
        # fooled at the smaller ε: not searched again
        assert bool((attack.queries[larger][fooled[smaller]] == 0).all())
        assert bool((attack.queries[larger][~fooled[smaller]] >= 2).all())  # the clean check and the start point
    independent = Square(model, EPS, n_queries=60, generator=torch.Generator().manual_seed(3))
    independent(images, labels)
    assert int(attack.queries.sum()) < int(independent.queries.sum())


def test_monotone_is_checked():
    with pytest.raises(ValueError, match="monotone"):
        PGD(nn.Flatten(), 0.1, monotone="yes")
