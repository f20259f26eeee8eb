"""BPDA (orthocore.defenses.bpda, defended(..., bpda=...)): the forward pass is the exact
defense, the backward pass the identity's or the approximation's; every attack runs
through it at many ε; and it agrees with the plain-PyTorch straight-through estimator
under torchattacks' PGD on a trained digits model."""

import pytest
import torch
import torch.nn.functional as F
import torchattacks
from torch import nn

from orthocore import attacks
from orthocore.data import load_digits
from orthocore.defenses import JPEG, Bilateral, BitDepth, TVDenoise, defended
from orthocore.defenses.bpda import straight_through
from orthocore.models import create

pytestmark = pytest.mark.usefixtures("one_thread")

DEFENSES = [JPEG(80), BitDepth(2), TVDenoise(0.05, iters=10), Bilateral(5)]
IDS = ["jpeg", "bit_depth", "tv", "bilateral"]


def _model(channels: int = 1, classes: int = 4) -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Conv2d(channels, 4, 3, padding=1), nn.Tanh(), nn.Flatten(),
                         nn.Linear(4 * 8 * 8, classes)).eval()  # fmt: skip


@pytest.mark.parametrize("defense", DEFENSES, ids=IDS)
@pytest.mark.parametrize("mode", ["identity", "approximation"])
def test_forward_is_the_exact_defense(defense, mode):
    model, x = _model(), torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(defended(model, defense, bpda=mode)(x), model(defense(x)))


@pytest.mark.parametrize("defense", DEFENSES, ids=IDS)
def test_identity_backward_is_the_models_gradient_at_the_defended_image(defense):
    """Straight through: the input gradient is the model's gradient taken at defense(x)."""
    model, x, y = _model(), torch.rand(5, 1, 8, 8), torch.tensor([0, 1, 2, 3, 0])
    x = x.requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(defended(model, defense, bpda="identity")(x), y), x)
    at = defense(x.detach()).requires_grad_(True)
    (expected,) = torch.autograd.grad(F.cross_entropy(model(at), y), at)
    assert torch.equal(grad, expected)


def test_approximation_backward_is_the_approximations_vector_jacobian_product():
    defense, x = BitDepth(2), torch.rand(3, 1, 8, 8, dtype=torch.float64)
    weights = torch.randn_like(x)
    x1 = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad((straight_through(x1, defense, defense.approximation) * weights).sum(), x1)
    x2 = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad((defense.approximation(x2) * weights).sum(), x2)
    assert torch.allclose(grad, expected)
    # and it is a true derivative: the approximation is smooth (checked in float64)
    assert torch.autograd.gradcheck(defense.approximation, (x.clone().requires_grad_(True),))


def test_bit_depth_approximation_passes_through_every_level_and_is_monotone():
    defense = BitDepth(2)
    levels = torch.tensor([0, 1, 2, 3], dtype=torch.float64) / 3
    assert torch.allclose(defense.approximation(levels), levels)
    grid = torch.linspace(0, 1, 1001, dtype=torch.float64)
    assert bool((defense.approximation(grid).diff() >= 0).all())
    # within half a level of the exact rounding everywhere
    assert float((defense.approximation(grid) - defense(grid.view(1, 1, 1, -1)).flatten()).abs().max()) <= 0.5 / 3


def test_bilateral_approximation_is_the_filter_itself():
    defense, x = Bilateral(5), torch.rand(2, 3, 9, 9)
    assert torch.equal(defense.approximation(x), defense(x))
    assert defense.has_approximation and BitDepth(1).has_approximation
    assert not JPEG(90).has_approximation and not TVDenoise(0.03).has_approximation


def test_modes_are_checked_and_shown():
    with pytest.raises(ValueError, match="bpda must be one of"):
        defended(_model(), JPEG(90), bpda="straight")
    net = defended(_model(), JPEG(90)).with_bpda("identity")
    assert net.bpda == "identity" and "bpda='identity'" in repr(net)


ATTACKS = {
    "fgsm": lambda m, eps: attacks.FGSM(m, eps),
    "ifgsm": lambda m, eps: attacks.IFGSM(m, eps, steps=5),
    "pgd": lambda m, eps: attacks.PGD(m, eps, steps=5, generator=torch.Generator().manual_seed(0)),
    "mifgsm": lambda m, eps: attacks.MIFGSM(m, eps, steps=5),
    "difgsm": lambda m, eps: attacks.DIFGSM(m, eps, steps=5, generator=torch.Generator().manual_seed(0)),
    "square": lambda m, eps: attacks.Square(m, eps, n_queries=20, generator=torch.Generator().manual_seed(0)),
}


@pytest.mark.parametrize("name", ATTACKS)
@pytest.mark.parametrize("mode", ["identity", "approximation"])
def test_every_attack_runs_through_bpda_at_many_eps(name, mode):
    model, x, y = _model(), torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 3, 0, 1])
    eps = [0.02, 0.1]
    adversarial = ATTACKS[name](defended(model, BitDepth(2), bpda=mode), eps)(x, y)
    assert adversarial.shape == (2, 6, 1, 8, 8)
    for e, radius in enumerate(eps):
        assert float((adversarial[e] - x).abs().max()) <= radius + 1e-6
        assert float((adversarial[e] - x).abs().max()) > 0  # the gradient (or the search) moved the images
    assert adversarial.min() >= 0 and adversarial.max() <= 1


def test_without_bpda_a_non_differentiable_defense_gives_no_gradient():
    """What BPDA is for: the defense's own ops have no derivative, so a white-box attack
    on the plain defended model cannot even start."""
    x = torch.rand(2, 1, 8, 8, requires_grad=True)
    with pytest.raises(RuntimeError, match="not have been used in the graph"):
        torch.autograd.grad(defended(_model(), JPEG(90))(x).sum(), x)


@pytest.fixture(scope="module")
def digits_model():
    """A digits CNN trained for a few epochs (about 97 % validation accuracy)."""
    torch.manual_seed(0)
    train = load_digits("train")
    images, labels = train.images, train.labels
    model = create("digits_cnn")
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(15):
        for batch in torch.randperm(len(labels)).split(64):
            optimizer.zero_grad()
            F.cross_entropy(model(images[batch]), labels[batch]).backward()
            optimizer.step()
    return model.eval()


class _PlainStraightThroughJPEG(nn.Module):
    """The plain-PyTorch reference: ``x + (jpeg(x) − x).detach()``."""

    def __init__(self, model, quality):
        super().__init__()
        self.model, self.jpeg = model, JPEG(quality)

    def forward(self, x):
        return self.model(x + (self.jpeg(x) - x).detach())


def test_bpda_through_jpeg_agrees_with_torchattacks_straight_through(digits_model):
    """Our BPDA-PGD through JPEG and torchattacks' PGD on the plain straight-through JPEG
    fool the exactly defended digits model equally often, within 3 points (their random
    starts differ, so not image by image)."""
    val = load_digits("val")
    images, labels = val.images, val.labels
    target = defended(digits_model, JPEG(75))
    with torch.no_grad():
        keep = target(images).argmax(1) == labels
    images, labels = images[keep], labels[keep]
    eps, steps = 0.15, 20
    ours = attacks.PGD(defended(digits_model, JPEG(75), bpda="identity"), eps, steps=steps,
                       generator=torch.Generator().manual_seed(0))(images, labels)  # fmt: skip
    torch.manual_seed(0)
    theirs = torchattacks.PGD(_PlainStraightThroughJPEG(digits_model, 75), eps=eps, alpha=2.5 * eps / steps,
                              steps=steps, random_start=True)(images, labels)  # fmt: skip
    with torch.no_grad():
        fooled_ours = 100 * float((target(ours).argmax(1) != labels).float().mean())
        fooled_theirs = 100 * float((target(theirs).argmax(1) != labels).float().mean())
        fooled_clean_gradient = 100 * float((target(attacks.PGD(digits_model, eps, steps=steps,
                                             generator=torch.Generator().manual_seed(0))(images, labels)).argmax(1)
                                             != labels).float().mean())  # fmt: skip
    assert len(labels) > 300
    assert 10 < fooled_theirs < 95, "ε should leave room for a difference to show"
    assert abs(fooled_ours - fooled_theirs) <= 3, (fooled_ours, fooled_theirs)
    assert fooled_ours >= fooled_clean_gradient - 3  # at least as strong as ignoring the defense
