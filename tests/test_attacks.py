"""Attacks: agreement with torchattacks, norm bounds, ε sweeps, targeted mode, the shared
loop's guarantees (gradient once for FGSM, chunking, model state) and input checks."""

import pytest
import torch
import torch.nn.functional as F
import torchattacks
from torch import nn

from orthocore import attacks
from orthocore.attacks import _memory
from orthocore.attacks._loop import LoopSettings
from orthocore.attacks.diversity import DiversityPlan, apply_diversity

EPS, ALPHA = 8 / 255, 2 / 255
ATTACK_NAMES = [name for name, cls in attacks.ATTACKS.items() if cls.uses_gradients]  # Square: tests/test_square.py

pytestmark = pytest.mark.usefixtures("one_thread")


class CountingModel(nn.Module):
    """A small CNN (with batch norm, so eval mode matters) that counts its forward calls."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 8, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, classes),
        )  # fmt: skip
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.net(x)


@pytest.fixture
def model():
    torch.manual_seed(1)
    net = CountingModel()
    with torch.no_grad():  # non-trivial running statistics: train-mode output would differ
        net.net[1].running_mean.uniform_(-0.5, 0.5)
        net.net[1].running_var.uniform_(0.5, 2.0)
    return net.eval()


@pytest.fixture
def batch():
    return torch.rand(12, 3, 12, 12), torch.randint(0, 10, (12,))


def _seeded(**options):
    return {"generator": torch.Generator().manual_seed(7), **options}


# ------------------------------------------------------------------ torchattacks agreement
TORCHATTACKS_PAIRS = {
    "fgsm": (lambda m: torchattacks.FGSM(m, eps=EPS), lambda m, t: attacks.FGSM(m, EPS, targeted=t)),
    "ifgsm": (
        lambda m: torchattacks.BIM(m, eps=EPS, alpha=ALPHA, steps=10),
        lambda m, t: attacks.IFGSM(m, EPS, steps=10, step_size=ALPHA, targeted=t),
    ),
    "pgd": (
        lambda m: torchattacks.PGD(m, eps=EPS, alpha=ALPHA, steps=10, random_start=False),
        lambda m, t: attacks.PGD(m, EPS, steps=10, step_size=ALPHA, random_start=False, targeted=t),
    ),
    "mifgsm": (
        lambda m: torchattacks.MIFGSM(m, eps=EPS, alpha=ALPHA, steps=10, decay=1.0),
        lambda m, t: attacks.MIFGSM(m, EPS, steps=10, step_size=ALPHA, decay=1.0, targeted=t),
    ),
}


@pytest.mark.parametrize("name", list(TORCHATTACKS_PAIRS))
@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
def test_matches_torchattacks(model, batch, name, targeted):
    """Same model, images and labels: the same adversarial images as torchattacks."""
    images, labels = batch
    make_peer, make_ours = TORCHATTACKS_PAIRS[name]
    peer = make_peer(model)
    if targeted:
        peer.set_mode_targeted_by_label(quiet=True)
    expected = peer(images, labels)
    got = make_ours(model, targeted)(images, labels)
    assert (got - images).abs().max() > 0.5 * ALPHA  # the attack moved the images
    assert (got - expected).abs().max() <= 1e-5


def test_paper_default_step_sizes(model, batch):
    """I-FGSM and MI-FGSM step ε/steps, PGD 2.5·ε/steps (Madry et al.), 10 steps."""
    images, labels = batch
    for name, scale in [("ifgsm", 1.0), ("mifgsm", 1.0), ("pgd", 2.5), ("difgsm", 1.0)]:
        settings = attacks.make_attack(name, model, 0.04).settings
        assert settings.steps == 10 and settings.step_for(0.04) == pytest.approx(scale * 0.04 / 10), name
    assert attacks.PGD(model).settings.random_start and attacks.MIFGSM(model).settings.decay == 1.0
    assert attacks.DIFGSM(model).settings.diversity_prob == 0.5


# -------------------------------------------------------------------------- norm bounds
@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_linf_bound_and_range(model, batch, name):
    images, labels = batch
    adv = attacks.make_attack(name, model, [0.01, 0.05], **_seeded())(images, labels)
    for eps, result in zip([0.01, 0.05], adv):
        assert (result - images).abs().max() <= eps + 1e-7
        assert result.min() >= 0 and result.max() <= 1


@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_l2_bound_and_differs_from_linf(model, batch, name):
    images, labels = batch
    eps = [0.25, 1.0]
    adv_l2 = attacks.make_attack(name, model, eps, norm="l2", **_seeded())(images, labels)
    adv_inf = attacks.make_attack(name, model, eps, norm="inf", **_seeded())(images, labels)
    for radius, result, other in zip(eps, adv_l2, adv_inf):
        norms = (result - images).flatten(1).norm(dim=1)
        assert (norms <= radius * (1 + 1e-6)).all()
        assert norms.max() > 0.5 * radius  # the budget is used
        assert (result - other).abs().max() > 1e-3
        assert result.min() >= 0 and result.max() <= 1


def test_l2_fgsm_reaches_the_sphere(model):
    """Away from the [0, 1] bounds, the L2 FGSM step lands on ‖δ‖₂ = ε exactly."""
    images = 0.3 + 0.4 * torch.rand(6, 3, 12, 12)
    adv = attacks.fgsm(model, images, torch.arange(6), eps=0.5, norm="2")
    torch.testing.assert_close((adv - images).flatten(1).norm(dim=1), torch.full((6,), 0.5))


# -------------------------------------------------------------------------- ε sweeps
@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_eps_list_equals_each_eps_alone(model, batch, name):
    """One sweep (chunked across ε boundaries) equals separate runs per ε with the same seed."""
    images, labels = batch
    eps = [0.0, 0.01, 0.03, 0.06]
    sweep = attacks.make_attack(name, model, eps, max_batch=5, **_seeded())(images, labels)
    assert sweep.shape == (4, *images.shape)
    for e, result in zip(eps, sweep):
        alone = attacks.make_attack(name, model, e, **_seeded())(images, labels)
        assert alone.shape == images.shape
        assert (result - alone).abs().max() <= 1e-6, e
    assert (sweep[0] == images).all()  # ε = 0 leaves the images alone


def test_fgsm_sweep_takes_one_gradient(model, batch):
    images, labels = batch
    model.calls = 0
    eps = [0.01 * k for k in range(1, 9)]
    whole = attacks.fgsm(model, images, labels, eps=eps)
    assert model.calls == 2  # the probe that checks labels against the logits, and one gradient
    model.calls = 0
    chunked = attacks.fgsm(model, images, labels, eps=eps, max_batch=5)
    assert model.calls == 3  # the 12 images' gradient in chunks of 5; the probe's count is remembered
    torch.testing.assert_close(chunked, whole)


def test_the_probe_runs_once_per_model_and_image_shape(model, batch):
    """The saved-activation count is remembered per model, image shape and parameter count;
    a repeated attack skips the probe and gives the same result."""
    images, labels = batch
    first = attacks.fgsm(model, images, labels, eps=[0.01, 0.02])
    model.calls = 0
    again = attacks.fgsm(model, images, labels, eps=[0.01, 0.02])
    assert model.calls == 1  # the gradient only
    assert torch.equal(again, first)
    model.calls = 0
    attacks.fgsm(model, F.interpolate(images, size=(10, 10)), labels, eps=0.01)
    assert model.calls == 2  # another image shape: probed again
    model.net[-1] = nn.Linear(32, 12)  # another head, another parameter count
    model.calls = 0
    attacks.fgsm(model, images, labels, eps=0.01)
    assert model.calls == 2


def test_labels_are_checked_by_the_first_pass_when_the_probe_is_skipped(model, batch):
    images, labels = batch
    attacks.fgsm(model, images, labels, eps=0.01)  # probes: the count is remembered
    bad = labels.clone()
    bad[3] = 10
    model.calls = 0
    with pytest.raises(ValueError, match="labels must be < the model's 10 output classes, got label 10"):
        attacks.ifgsm(model, images, bad, eps=[0.01, 0.02], steps=3)
    assert model.calls == 1  # the first forward pass, stopped before its backward pass


@pytest.mark.parametrize("name", ["ifgsm", "mifgsm", "difgsm"])
def test_iterative_sweep_shares_the_first_gradient(model, batch, name):
    """Every ε starts at the clean image: the first step's gradient is taken once on the
    B images; the other steps run on all E·B rows."""
    images, labels = batch
    model.calls = 0
    attacks.make_attack(name, model, [0.01, 0.02, 0.03], steps=4, max_batch=12, **_seeded())(images, labels)
    assert model.calls == 1 + 1 + 3 * 3  # probe, first gradient, 3 steps x 3 chunks of 12 rows


def test_random_start_takes_every_gradient_per_eps(model, batch):
    images, labels = batch
    model.calls = 0
    attacks.pgd(model, images, labels, eps=[0.01, 0.02, 0.03], steps=4, max_batch=12, **_seeded())
    assert model.calls == 1 + 4 * 3  # probe, 4 steps x 3 chunks: each ε starts elsewhere


def test_cpu_chunks_hold_a_bounded_activation_size(monkeypatch):
    monkeypatch.setenv("ORTHOCORE_ATTACK_MEMORY", str(2**40))  # memory is no limit
    saved = 2 * 2**20  # bytes autograd saves per image
    cpu_rows = _memory.rows_per_chunk(saved, 3072, 10_000, torch.device("cpu"))
    assert cpu_rows == _memory.CPU_CHUNK_BYTES // saved
    assert _memory.rows_per_chunk(saved, 3072, 10_000, torch.device("cuda")) == 10_000  # a GPU takes all
    assert _memory.rows_per_chunk(2**40, 3072, 10, torch.device("cpu")) == 1


def test_memory_budget_chunks_without_changing_results(model, batch, monkeypatch):
    images, labels = batch
    whole = attacks.pgd(model, images, labels, eps=[0.02, 0.04], **_seeded())
    model.calls = 0
    monkeypatch.setenv("ORTHOCORE_ATTACK_MEMORY", "200000")  # a few images per chunk
    chunked = attacks.pgd(model, images, labels, eps=[0.02, 0.04], **_seeded())
    assert model.calls > 1 + 10 * 2  # more than one chunk per step
    torch.testing.assert_close(chunked, whole, atol=1e-6, rtol=0)


# ---------------------------------------------------------------- attack semantics
@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_untargeted_raises_loss_targeted_lowers_target_loss(model, batch, name):
    images, labels = batch
    targets = (labels + 1) % 10
    loss = nn.functional.cross_entropy
    with torch.no_grad():
        clean_loss, clean_target_loss = loss(model(images), labels), loss(model(images), targets)
        adv = attacks.make_attack(name, model, 0.05, **_seeded())(images, labels)
        adv_t = attacks.make_attack(name, model, 0.05, targeted=True, **_seeded())(images, targets)
        assert loss(model(adv), labels) > clean_loss
        assert loss(model(adv_t), targets) < clean_target_loss


def test_mifgsm_without_momentum_is_ifgsm(model, batch):
    """With μ = 0 the direction is sign(g / mean|g|) = sign(g): I-FGSM."""
    images, labels = batch
    torch.testing.assert_close(
        attacks.mifgsm(model, images, labels, eps=0.03, decay=0.0), attacks.ifgsm(model, images, labels, eps=0.03)
    )


def test_difgsm_without_diversity_is_ifgsm_and_with_it_differs(model, batch):
    images, labels = batch
    plain = attacks.ifgsm(model, images, labels, eps=0.03)
    torch.testing.assert_close(attacks.difgsm(model, images, labels, eps=0.03, diversity_prob=0.0), plain)
    diverse = attacks.difgsm(model, images, labels, eps=0.03, diversity_prob=1.0, **_seeded())
    assert (diverse - plain).abs().max() > 1e-3


def test_pgd_random_start_is_seeded_and_matters(model, batch):
    images, labels = batch
    first = attacks.pgd(model, images, labels, eps=0.03, **_seeded())
    torch.testing.assert_close(attacks.pgd(model, images, labels, eps=0.03, **_seeded()), first)
    assert (first - attacks.pgd(model, images, labels, eps=0.03, random_start=False)).abs().max() > 1e-4


def test_apply_diversity_shrinks_and_pads():
    x = torch.rand(3, 2, 10, 10, requires_grad=True)
    plan = DiversityPlan.draw(1, 3, (10, 10), prob=1.0, resize_rate=0.7, generator=torch.Generator().manual_seed(0))
    out = apply_diversity(x, plan.rows(0, torch.arange(3)))
    assert out.shape == x.shape
    for i in range(3):
        h, w, top, left = (int(getattr(plan, f)[0, i]) for f in ("height", "width", "top", "left"))
        assert 7 <= h < 10 and 7 <= w < 10
        inside = torch.zeros(10, 10, dtype=torch.bool)
        inside[top : top + h, left : left + w] = True
        assert (out[i][:, ~inside] == 0).all()
        expected = nn.functional.interpolate(x[i : i + 1], size=(h, w), mode="bilinear", align_corners=False)[0]
        torch.testing.assert_close(out[i][:, inside].view(2, h, w), expected)
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert grad.abs().sum() > 0
    never = DiversityPlan.draw(1, 3, (10, 10), prob=0.0, resize_rate=0.7, generator=None)
    assert apply_diversity(x, never.rows(0, torch.arange(3))) is x


def test_model_state_is_restored(batch):
    images, labels = batch
    net = CountingModel().train()
    net.net[0].weight.requires_grad_(False)
    running_mean = net.net[1].running_mean.clone()
    attacks.pgd(net, images, labels, eps=0.03, steps=2)
    assert net.training and not net.net[0].weight.requires_grad and net.net[0].bias.requires_grad
    torch.testing.assert_close(net.net[1].running_mean, running_mean)  # eval mode during the attack


# ------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"images": torch.rand(4, 3, 8, 8) * 2}, ValueError, r"images must be in \[0, 1\]"),
        ({"images": torch.full((4, 3, 8, 8), float("nan"))}, ValueError, "images must be finite.*NaN"),
        ({"images": torch.rand(0, 3, 8, 8), "labels": torch.zeros(0, dtype=torch.long)}, ValueError, "not be empty"),
        ({"images": torch.rand(4, 192)}, ValueError, r"images must have shape \(B, C, H, W\)"),
        ({"images": torch.randint(0, 2, (4, 3, 8, 8))}, TypeError, "floating-point"),
        ({"eps": -0.01}, ValueError, "eps must be a finite number >= 0"),
        ({"eps": [0.01, float("inf")]}, ValueError, "eps must be a finite number"),
        ({"eps": []}, ValueError, "eps must not be an empty list"),
        ({"eps": "0.03"}, TypeError, "eps must be a number"),
        ({"labels": torch.tensor([0, 1, 2, -1])}, ValueError, "labels must be class indices >= 0"),
        ({"labels": torch.tensor([0, 1, 2])}, ValueError, r"labels must have shape \(4,\)"),
        ({"labels": torch.zeros(4)}, TypeError, "labels must be an integer tensor"),
        ({"images": torch.rand(4, 3, 8, 8, dtype=torch.float64)}, TypeError, "model parameters are torch.float32"),
        ({"options": {"steps": 0}}, ValueError, "steps must be an integer >= 1"),
        ({"options": {"norm": "l1"}}, ValueError, "norm must be one of"),
        ({"options": {"max_batch": 0}}, ValueError, "max_batch must be an integer"),
    ],
)
def test_bad_input_fails_before_any_work(change, error, match):
    net = CountingModel(classes=5)
    args = {"images": torch.rand(4, 3, 8, 8), "labels": torch.tensor([0, 1, 2, 4]), "eps": 0.03, "options": {}}
    args.update(change)
    with pytest.raises(error, match=match):
        attacks.ifgsm(net, args["images"], args["labels"], eps=args["eps"], **args["options"])
    assert net.calls == 0


def test_labels_beyond_the_model_classes_fail_after_one_probe_only():
    net = CountingModel(classes=5)
    with pytest.raises(ValueError, match="labels must be < the model's 5 output classes, got label 7"):
        attacks.pgd(net, torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 7, 2]), eps=0.03)
    assert net.calls == 1  # the no-backward probe that reads the number of classes


def test_model_must_return_logits():
    with pytest.raises(ValueError, match=r"model must return \(B, num_classes\) logits"):
        attacks.fgsm(nn.Flatten(0), torch.rand(2, 3, 4, 4), torch.tensor([0, 1]), eps=0.1)


# ------------------------------------------------------------------ ensembles and restarts
class _MeanOfTwo(nn.Module):
    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x):
        return torch.stack([self.a(x), self.b(x)]).mean(0)


@pytest.mark.parametrize("name", list(attacks.ATTACKS))
def test_an_ensemble_source_is_the_attack_on_its_mean_logits(model, batch, name):
    images, labels = batch
    torch.manual_seed(5)
    other = CountingModel().eval()
    model.train()  # the members' own modes are restored afterwards
    options = {"n_queries": 30} if name == "square" else {}
    ensemble = attacks.make_attack(name, [model, other], [0.01, 0.03], **_seeded(**options))(images, labels)
    assert model.training and not other.training
    mean = attacks.make_attack(name, _MeanOfTwo(model, other), [0.01, 0.03], **_seeded(**options))(images, labels)
    assert torch.equal(ensemble, mean)
    with pytest.raises(ValueError, match="at least one model"):
        attacks.make_attack(name, [], 0.01)


def test_restarts_never_fool_less_than_one_run(model, batch):
    """Restart 0 of three is the single run (same draws); each image keeps the lowest
    margin, so every image one run fools, three restarts fool too."""
    images, labels = batch
    eps = [0.005, 0.01, 0.02]
    one = attacks.pgd(model, images, labels, eps=eps, steps=3, **_seeded())
    three = attacks.pgd(model, images, labels, eps=eps, steps=3, restarts=3, **_seeded())
    with torch.no_grad():
        for single, best in zip(one, three):
            logits_1, logits_3 = model(single), model(best)
            margin_1 = logits_1.gather(1, labels[:, None])[:, 0] - logits_1.scatter(1, labels[:, None], -1e9).amax(1)
            margin_3 = logits_3.gather(1, labels[:, None])[:, 0] - logits_3.scatter(1, labels[:, None], -1e9).amax(1)
            assert (margin_3 <= margin_1 + 1e-6).all()
            assert ((logits_3.argmax(1) != labels) | (logits_1.argmax(1) == labels)).all()
    assert not torch.equal(one, three)  # the other restarts found lower margins somewhere
    alone = attacks.pgd(model, images, labels, eps=0.01, steps=3, restarts=3, **_seeded())
    assert torch.equal(alone, three[1])  # a sweep with restarts equals each ε alone
    with pytest.raises(ValueError, match="restarts > 1 needs a random start"):
        attacks.PGD(model, 0.01, restarts=2, random_start=False)


def test_stop_when_fooled_keeps_every_fooling_iterate_and_is_plain_pgd_elsewhere(model, batch):
    """Until a row fools, its trajectory is plain PGD's: rows that never fool end equal,
    rows that fool at any iterate end fooled, so it never fools less than the last iterate."""
    images, labels = batch
    eps = [0.005, 0.01, 0.03]
    plain = attacks.pgd(model, images, labels, eps=eps, steps=5, restarts=2, **_seeded())
    frozen = attacks.pgd(model, images, labels, eps=eps, steps=5, restarts=2, stop_when_fooled=True, **_seeded())
    with torch.no_grad():
        for e, (last, first) in enumerate(zip(plain, frozen)):
            fooled_last, fooled_first = model(last).argmax(1) != labels, model(first).argmax(1) != labels
            assert (fooled_first | ~fooled_last).all()
            same = (last == first).flatten(1).all(1)
            assert (fooled_first | same).all()
            assert (first - images).abs().max() <= eps[e] + 1e-6 and first.min() >= 0 and first.max() <= 1
    alone = attacks.pgd(model, images, labels, eps=0.01, steps=5, restarts=2, stop_when_fooled=True, **_seeded())
    assert torch.equal(alone, frozen[1])  # a sweep equals each ε alone
    with pytest.raises(ValueError, match="stop_when_fooled needs diversity_prob = 0"):
        LoopSettings(diversity_prob=0.5, stop_when_fooled=True)
