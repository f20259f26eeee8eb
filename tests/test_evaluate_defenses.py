"""Table III evaluation on tiny models whose answers are known."""

import pytest
import torch
from torch import nn

from orthocore.evaluate.defenses import defense_evaluation
from orthocore.evaluate.settings import DefenseConfig


class Identity(nn.Module):
    def forward(self, x):
        return x


class Blank(nn.Module):
    """A 'defense' that erases the image: every prediction becomes the blank image's."""

    def forward(self, x):
        return torch.zeros_like(x)


def _linear(base=None, noise=0.0):
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    if base is not None:
        with torch.no_grad():
            for mine, theirs in zip(model.parameters(), base.parameters()):
                mine.copy_(theirs + noise * torch.randn_like(theirs))
    return model


@pytest.fixture
def setting():
    source = _linear()
    target, orthogonal = _linear(source, 0.05), _linear(source, 0.05)
    images = torch.rand(300, 1, 4, 4)
    with torch.no_grad():
        labels = source(images).argmax(1)
    return source, target, orthogonal, (images, labels)


def test_rows_and_clean_fooling(setting):
    source, target, orthogonal, data = setting
    config = DefenseConfig(attacks=("fgsm", "pgd"), defense_eps=(0.03, 0.3), n_images=40)
    rows = defense_evaluation(source, target, {"identity": Identity(), "blank": Blank()}, {"ortho": orthogonal}, data,
                              config, target_name="ordinary")  # fmt: skip
    assert len(rows) == 4 * 2 * 2  # (undefended, 2 defenses, 1 orthogonal) x attacks x eps
    assert [r.defense for r in rows[::4]] == ["none", "identity", "blank", "none"]
    by = {(r.target, r.defense, r.attack, r.eps): r for r in rows}
    total = rows[0].total
    assert 0 < total <= 40
    for attack in ("fgsm", "pgd"):
        for eps in (0.03, 0.3):
            undefended = by["ordinary", "none", attack, eps]
            assert undefended.clean_fooling_percent == 0 and by["ortho", "none", attack, eps].clean_fooling_percent == 0
            assert by["ordinary", "identity", attack, eps].fooling_percent == undefended.fooling_percent
    # Erasing every image leaves only the blank image's class: the clean fooling ratio is
    # the share of the sample with another label, and attacks cannot change it.
    blank = by["ordinary", "blank", "fgsm", 0.3]
    assert 0 < blank.clean_fooling_percent < 100
    assert blank.fooling_percent == blank.clean_fooling_percent
    assert by["ordinary", "none", "pgd", 0.3].fooling_percent > by["ordinary", "none", "pgd", 0.03].fooling_percent


def test_bad_arguments(setting):
    source, target, orthogonal, data = setting
    with pytest.raises(ValueError, match="unknown attack"):
        defense_evaluation(source, target, {}, {}, data, DefenseConfig(attacks=("nope",)))
    with pytest.raises(ValueError, match="defense_eps"):
        defense_evaluation(source, target, {}, {}, data, DefenseConfig(defense_eps=(-0.1,)))
    with pytest.raises(ValueError, match="target_name"):
        defense_evaluation(source, target, {}, {"target": orthogonal}, data)
