"""Square Attack: agreement with torchattacks, the ε-ball and [0, 1], the query budget,
seeding, ε sweeps, targeted mode and input checks."""

import pytest
import torch
import torchattacks
from torch import nn

from orthocore import attacks
from orthocore.attacks.square import SquareSettings, run_square

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def linear():
    """A linear classifier on 3x16x16 images: margins move with the perturbation, so the
    search succeeds on part of the images at moderate ε."""
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 10)).eval()


def _images(count, seed=0):
    return torch.rand(count, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def _seeded(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(("norm", "eps"), [("Linf", 0.03), ("L2", 1.0)])
def test_fooling_percent_agrees_with_torchattacks(linear, norm, eps):
    """Same budget, ε and loss on 1,000 images, two seeds each: the mean fooling ratios
    agree within 3 points. The searches draw differently, so they agree in distribution,
    not image by image; one seed alone moves either by ±3 points. orthocore's is 1.5-2.5
    points stronger over four seeds: its squares also reach the last row and column."""
    images = _images(1000)
    with torch.no_grad():
        labels = linear(images).argmax(1)  # every image starts correctly classified
    fooled = {"theirs": 0.0, "ours": 0.0}
    for seed in (0, 1):
        with torch.no_grad():
            theirs = torchattacks.Square(linear, norm=norm, eps=eps, n_queries=100, seed=seed)(images, labels)
            ours = attacks.square(linear, images, labels, eps=eps, norm=norm, n_queries=100, generator=_seeded(seed))
            fooled["theirs"] += 50 * (linear(theirs).argmax(1) != labels).float().mean().item()
            fooled["ours"] += 50 * (linear(ours).argmax(1) != labels).float().mean().item()
    assert 20 < fooled["theirs"] < 80, "the check needs a budget where the search sometimes fails"
    assert abs(fooled["ours"] - fooled["theirs"]) <= 3, fooled


@pytest.mark.parametrize("norm", ["inf", "2"])
def test_ball_range_and_query_budget(linear, norm):
    images = _images(40)
    with torch.no_grad():
        labels = linear(images).argmax(1)
    labels[:5] = (labels[:5] + 1) % 10  # already misclassified: left alone after the clean check
    eps = [0.0, 0.02, 0.1] if norm == "inf" else [0.0, 0.5, 2.0]
    adversarial, queries = run_square(linear, images, labels, eps, SquareSettings(norm=norm, n_queries=60),
                                      generator=_seeded())  # fmt: skip
    assert adversarial.shape == (3, *images.shape) and queries.shape == (3, 40)
    for radius, result in zip(eps, adversarial):
        delta = (result - images).flatten(1)
        size = delta.abs().amax(1) if norm == "inf" else delta.norm(dim=1)
        assert (size <= radius * (1 + 1e-6) + 1e-7).all()
        assert result.min() >= 0 and result.max() <= 1
    assert queries.max() <= 60 and queries.min() >= 1
    assert (queries[:, :5] == 1).all() and (adversarial[:, :5] == images[:5]).all()
    assert (adversarial[0] == images).all() and (queries[0, 5:] == 60).all()  # ε = 0 never succeeds
    with torch.no_grad():
        fooled = linear(adversarial[2]).argmax(1) != labels
    assert fooled[5:].any()
    assert (queries[2][fooled & (torch.arange(40) >= 5)] < 60).any()  # early stop per image


@pytest.mark.parametrize("norm", ["inf", "2"])
def test_eps_list_equals_each_eps_alone_and_is_seeded(linear, norm):
    images = _images(12)
    with torch.no_grad():
        labels = linear(images).argmax(1)
    eps = [0.01, 0.05] if norm == "inf" else [0.3, 1.5]
    sweep = attacks.square(linear, images, labels, eps=eps, norm=norm, n_queries=80, generator=_seeded(), max_batch=7)
    for radius, result in zip(eps, sweep):
        alone = attacks.square(linear, images, labels, eps=radius, norm=norm, n_queries=80, generator=_seeded())
        assert torch.equal(result, alone)
    other = attacks.square(linear, images, labels, eps=eps, norm=norm, n_queries=80, generator=_seeded(1))
    assert not torch.equal(sweep, other)


def test_targeted_reaches_the_target_and_ce_loss(linear):
    images = _images(30)
    with torch.no_grad():
        targets = (linear(images).argmax(1) + 1) % 10
    attack = attacks.Square(linear, 0.2, targeted=True, n_queries=200, loss="ce", generator=_seeded())
    adversarial = attack(images, targets)
    with torch.no_grad():
        predicted = linear(adversarial).argmax(1)
    done = attack.queries < 200
    assert done.any() and (predicted[done] == targets[done]).all()


def test_uses_forward_passes_only(linear):
    images = _images(6)
    labels = torch.zeros(6, dtype=torch.long)
    for parameter in linear.parameters():
        parameter.register_hook(lambda grad: pytest.fail("Square must not take gradients"))
    attacks.square(linear, images, labels, eps=0.1, n_queries=20, generator=_seeded())
    assert not linear.training


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"n_queries": 1}, ValueError, "n_queries must be an integer >= 2"),
        ({"p_init": 0.0}, ValueError, r"p_init must be a finite number in \(0, 1\]"),
        ({"loss": "hinge"}, ValueError, "loss must be one of margin, ce"),
        ({"norm": "l1"}, ValueError, "norm must be one of"),
        ({"eps": -0.1}, ValueError, "eps must be a finite number >= 0"),
        ({"labels": torch.full((4,), 10)}, ValueError, "labels must be < the model's 10 output classes"),
        ({"images": torch.rand(4, 3, 16, 16) * 2}, ValueError, r"images must be in \[0, 1\]"),
    ],
)
def test_bad_input_fails_before_any_query(linear, options, error, match):
    images, labels = options.pop("images", _images(4)), options.pop("labels", torch.zeros(4, dtype=torch.long))
    with pytest.raises(error, match=match):
        attacks.square(linear, images, labels, **{"eps": 0.1, **options})


def test_model_state_is_left_as_it_was():
    """A model in train mode keeps its mode and its batch-norm statistics: every pass
    (the memory probe included) runs in eval mode."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(10))
    model(torch.rand(2, 3, 16, 16))
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    attacks.square(model, _images(5), torch.zeros(5, dtype=torch.long), eps=0.1, n_queries=10, generator=_seeded())
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
