"""Transfer protocol: image selection, fooling ratios against a by-hand count, seeding,
and the CSV/JSON writers."""

import json
import os

import pytest
import torch
from torch import nn

from orthocore import attacks
from orthocore.evaluate import FoolingTable, TransferConfig, default_eps_grid, select_correct, transfer_evaluation
from orthocore.evaluate import table as table_module

pytestmark = pytest.mark.usefixtures("one_thread")


class ChannelMeanClassifier(nn.Module):
    """Logits = scale · (per-channel means) @ W: with W near the identity it predicts the
    brightest channel, so most images of :func:`_dataset` are classified correctly."""

    def __init__(self, seed: int, noise: float = 0.2):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.eye(3) + noise * torch.randn(3, 3, generator=generator))

    def forward(self, x):
        return 20 * x.mean((2, 3)) @ self.weight


def _dataset(n=300):
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(n, 3, 6, 6, generator=generator)
    return images, images.mean((2, 3)).argmax(1)


@pytest.fixture
def models():
    return ChannelMeanClassifier(1), {"near": ChannelMeanClassifier(2, 0.1), "far": ChannelMeanClassifier(3, 0.4)}


def test_selection_is_correct_for_every_model_and_seeded(models):
    source, targets = models
    nets = [source, *targets.values()]
    images, labels = select_correct(nets, _dataset(), 50, seed=3, batch_size=32, device=torch.device("cpu"))
    assert images.shape == (50, 3, 6, 6)
    for net in nets:
        assert (net(images).argmax(1) == labels).all()
    again, _ = select_correct(nets, _dataset(), 50, seed=3, batch_size=7, device=torch.device("cpu"))
    torch.testing.assert_close(again, images)  # the sample depends on the seed, not the batch size
    other, _ = select_correct(nets, _dataset(), 50, seed=4, batch_size=32, device=torch.device("cpu"))
    assert not torch.equal(other, images)


def test_selection_with_too_few_correct_images(models):
    source, _ = models
    with pytest.warns(UserWarning, match="only"):
        images, _ = select_correct([source], _dataset(20), 1000, seed=0, batch_size=8, device=torch.device("cpu"))
    assert 0 < len(images) <= 20
    constant = ChannelMeanClassifier(1)
    with torch.no_grad():
        constant.weight.zero_()  # predicts class 0 everywhere
    images, labels = _dataset(20)
    with pytest.raises(ValueError, match="no image of the dataset is classified correctly"):
        select_correct([constant], (images, labels.clamp(min=1)), 10, seed=0, batch_size=8, device=torch.device("cpu"))


def test_fooling_percents_match_a_count_by_hand(models):
    source, targets = models
    config = TransferConfig(attacks=("fgsm", "pgd"), eps=(0.0, 0.02, 0.1), n_images=40, seed=5, attack_batch=16)
    table = transfer_evaluation(source, targets, _dataset(), config)
    assert len(table.rows) == 2 * 3 * 3 and table.metadata["images"] == 40
    images, labels = select_correct([source, *targets.values()], _dataset(), 40, 5, 16, torch.device("cpu"))
    adversarial = attacks.fgsm(source, images, labels, eps=0.1)
    for name, net in [("source", source), *targets.items()]:
        fooled = (net(adversarial).argmax(1) != labels).sum().item()
        assert table.ratio("fgsm", 0.1, name) == pytest.approx(100 * fooled / 40)
        assert table.ratio("fgsm", 0.0, name) == 0.0 and table.ratio("pgd", 0.0, name) == 0.0
    assert table.ratio("fgsm", 0.1, "source") > table.ratio("fgsm", 0.02, "source") > 0
    assert {row.role for row in table.rows if row.model == "source"} == {"source"}
    assert table.rows == transfer_evaluation(source, targets, _dataset(), config).rows  # seeded


def test_dataset_objects_give_the_same_table(models):
    source, targets = models
    config = TransferConfig(attacks=("ifgsm",), eps=(0.05,), n_images=20, seed=1, attack_batch=8)
    from_tensors = transfer_evaluation(source, targets, _dataset(), config)
    from_dataset = transfer_evaluation(source, targets, torch.utils.data.TensorDataset(*_dataset()), config)
    assert from_tensors.rows == from_dataset.rows


def test_writers_round_trip_and_leave_no_partial_file(models, tmp_path, monkeypatch):
    source, targets = models
    config = TransferConfig(attacks=("fgsm",), eps=(0.01, 0.05), n_images=10, attack_batch=8)
    table = transfer_evaluation(source, targets, _dataset(), config)
    csv_lines = table.to_csv(tmp_path / "out.csv").read_text().splitlines()
    assert csv_lines[0] == "attack,eps,model,role,fooled,total,fooling_percent" and len(csv_lines) == 1 + 6
    assert FoolingTable.from_json(table.to_json(tmp_path / "out.json")) == table
    assert json.loads((tmp_path / "out.json").read_text())["metadata"]["config"]["seed"] == 0
    header = table.format().splitlines()[0]
    assert "fgsm" in table.format() and "near" in header and "source (source)" in header

    def fail(*_):
        raise OSError("disk full")

    monkeypatch.setattr(table_module.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        table.to_csv(tmp_path / "out.csv")
    assert sorted(os.listdir(tmp_path)) == ["out.csv", "out.json"]  # old file kept, no temporary left
    assert (tmp_path / "out.csv").read_text().splitlines() == csv_lines


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"attacks": ("fgsm", "cw")}, "unknown attack 'cw'"),
        ({"attacks": ()}, "at least one attack"),
        ({"eps": (0.01, -0.02)}, r"eps must be a finite number in \[0, 1\], got -0.02"),
        ({"n_images": 0}, "n_images must be an integer"),
    ],
)
def test_config_rejects_bad_values(options, match):
    with pytest.raises(ValueError, match=match):
        TransferConfig(**options)


def test_default_grid_is_the_papers():
    grid = default_eps_grid()
    assert len(grid) == 16 and grid[0] == pytest.approx(0.005) and grid[-1] == pytest.approx(0.08)
    assert TransferConfig().n_images == 1000
