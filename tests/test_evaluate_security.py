"""The security evaluation: every row and diagnostic computed from the per-image
outcomes, worst cases as unions, seeding, a masked model flagged, and input checks."""

import pytest
import torch
from torch import nn

from orthocore.evaluate import SecurityConfig, security_evaluation
from orthocore.evaluate.security import SQUARE, WHITE_BOX, WORST_CASE, WORST_TRANSFER, transfer_row

pytestmark = pytest.mark.usefixtures("one_thread")

CONFIG = SecurityConfig(security_eps=(0.05, 0.3), n_images=40, attack_batch=16, white_box_steps=8, restarts=2, short_steps=2,
                        square_queries=40, transfer_steps=4)  # fmt: skip


def _linear(seed):
    """A linear classifier near K's (seed 0), so that the models agree on many images."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 6, 4)).eval()
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter) * parameter.std() * (seed > 0))
    return model


class Quantised(nn.Module):
    """A model whose input gradient is zero almost everywhere (it rounds its input to 4
    levels first): white-box gradients say nothing, queries still find adversarials."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(torch.round(x * 3) / 3)


@pytest.fixture(scope="module")
def data():
    reference = _linear(0)
    images = torch.rand(400, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        labels = reference(images).argmax(1)  # K is right on every image
    return reference, (images, labels)


@pytest.fixture(scope="module")
def result(data):
    reference, dataset = data
    targets = {"plain": _linear(1), "masked": Quantised(_linear(2))}
    return security_evaluation(targets, reference, dataset, CONFIG, sources={"surrogate": _linear(3),
                               "ensemble": [_linear(4), _linear(5)]})  # fmt: skip


def test_every_row_per_target_from_one_sample(result, data):
    reference, (images, labels) = data
    transfers = [transfer_row(name) for name in ("K", "surrogate", "ensemble")]
    rows = [WHITE_BOX, f"{WHITE_BOX}, 2 steps", SQUARE, *transfers, WORST_TRANSFER, WORST_CASE]
    assert list(result.fooled) == [(target, row) for target in ("plain", "masked") for row in rows]
    count = result.metadata["images"]
    assert 0 < count <= 40
    for (target, row), mask in result.fooled.items():
        assert mask.dtype == torch.bool and mask.shape == (2, count)
        assert result.ratio(target, row) == pytest.approx((100 * mask.float().mean(1)).tolist())
    records = result.rows()
    assert len(records) == len(result.fooled) * 2 and {r["total"] for r in records} == {count}
    assert "transfer from ensemble" in result.format()


def test_worst_cases_are_unions_and_diagnostics_follow_the_outcomes(result):
    for target in ("plain", "masked"):
        transfers = [mask for (who, row), mask in result.fooled.items() if who == target and row.startswith("transfer")]
        assert torch.equal(result.fooled[target, WORST_TRANSFER], torch.stack(transfers).any(0))
        every = [mask for (who, row), mask in result.fooled.items() if who == target and row != WORST_CASE]
        assert torch.equal(result.fooled[target, WORST_CASE], torch.stack(every).any(0))
        black_box_only = (result.fooled[target, WORST_TRANSFER] | result.fooled[target, SQUARE]) & ~result.fooled[
            target, WHITE_BOX]
        assert result.diagnostics[target]["black_box_only_percent"] == pytest.approx(
            (100 * black_box_only.float().mean(1)).tolist())
        assert result.diagnostics[target]["white_box_at_largest_eps_percent"] == pytest.approx(
            result.ratio(target, WHITE_BOX)[-1])


def test_gradient_masking_is_flagged(result):
    """The quantised model has no useful input gradient: Square fools it where white-box
    PGD does not, and its gradient norm is zero; the plain model shows neither."""
    masked, plain = result.diagnostics["masked"], result.diagnostics["plain"]
    assert masked["mean_input_gradient_norm"] == 0 and plain["mean_input_gradient_norm"] > 0
    assert masked["black_box_only_percent"][-1] > 20
    assert plain["black_box_only_percent"][-1] <= 5
    assert result.ratio("plain", WHITE_BOX)[-1] >= result.ratio("plain", f"{WHITE_BOX}, 2 steps")[-1]


def test_seeded(result, data):
    reference, dataset = data
    again = security_evaluation({"plain": _linear(1), "masked": Quantised(_linear(2))}, reference, dataset, CONFIG,
                                sources={"surrogate": _linear(3), "ensemble": [_linear(4), _linear(5)]})  # fmt: skip
    assert all(torch.equal(again.fooled[key], mask) for key, mask in result.fooled.items())


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"config": {"security_eps": (0.1, 1.5)}}, r"security_eps must be a finite number in \(0, 1\]"),
        ({"config": {"restarts": 0}}, "restarts must be an integer >= 1"),
        ({"config": {"square_queries": 1}}, "square_queries must be an integer >= 2"),
        ({"targets": {}}, "targets: expected at least one model"),
        ({"sources": {"K": None}}, "sources: 'K' is the reference's name"),
        ({"sources": {"ensemble": []}}, "an ensemble needs at least one model"),
    ],
)
def test_bad_input_fails_before_any_work(data, change, match):
    reference, dataset = data
    with pytest.raises(ValueError, match=match):
        config = SecurityConfig(**change.get("config", {}))
        security_evaluation(change.get("targets", {"plain": _linear(1)}), reference, dataset, config,
                            sources=change.get("sources"))  # fmt: skip


def test_input_transformation_defenses_are_attacked_through_bpda_and_eot(data):
    """A target behind a defense faces the same rows; its white-box attacker goes through
    the exact defense with BPDA's gradient (and EOT over the draws of a random one), so
    the rounding that hides the gradient of the quantised model above hides nothing here,
    and the evaluation is repeatable draw for draw."""
    from orthocore.defenses import BitDepth, TVDenoise, defended

    reference, dataset = data
    config = SecurityConfig(**{**CONFIG.__dict__, "eot_samples": 3})

    def run():
        base = _linear(1)
        targets = {"plain": base, "plain + bits": defended(base, BitDepth(2)),
                   "plain + random TV": defended(base, TVDenoise(0.05, keep_prob=0.5, iters=5, rounds=1))}  # fmt: skip
        return security_evaluation(targets, reference, dataset, config, sources={"surrogate": _linear(3)})

    result = run()
    assert result.metadata["white_box"] == {
        "plain": "PGD on its own gradient",
        "plain + bits": "PGD through the exact defense, BPDA with the defense's approximation backward",
        "plain + random TV": "PGD through the exact defense, BPDA with the identity backward, EOT over 3 draws",
    }
    # at ε = 0.3 through a known defense (the quantised model above, attacked without BPDA: 5 %)
    assert result.ratio("plain + bits", WHITE_BOX)[-1] >= 95
    assert result.ratio("plain + random TV", WHITE_BOX)[-1] >= 80  # its own draw decides: not every image
    for target in ("plain + bits", "plain + random TV"):
        assert result.diagnostics[target]["mean_input_gradient_norm"] > 0
    again = run()
    assert all(torch.equal(again.fooled[key], mask) for key, mask in result.fooled.items())
