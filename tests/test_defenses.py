"""orthocore.defenses: the modules equal their ops, defended() applies the defense first,
the paper's settings, and settings are checked when a module is built."""

import pytest
import torch
from torch import nn

from orthocore import defenses
from orthocore.checks import check_number
from orthocore.defenses import JPEG, BitDepth, Defended, defended
from orthocore.ops import bit_depth, jpeg


class _Recorder(nn.Module):
    """A model that remembers its input and returns its per-image mean as 'logits'."""

    def forward(self, x):
        self.seen = x
        return x.flatten(1).mean(1, keepdim=True)


def test_modules_equal_their_ops():
    x = torch.rand(3, 3, 21, 18)
    assert torch.equal(JPEG(85)(x), jpeg(x, 85))
    assert torch.equal(BitDepth(3)(x), bit_depth(x, 3))


def test_defended_applies_the_defense_before_the_model():
    x = torch.rand(2, 3, 16, 16)
    model = _Recorder()
    net = defended(model, BitDepth(1))
    assert isinstance(net, Defended)
    logits = net(x)
    assert torch.equal(model.seen, bit_depth(x, 1))
    assert torch.equal(logits, bit_depth(x, 1).flatten(1).mean(1, keepdim=True))
    assert list(dict(net.named_children())) == ["defense", "model"]


def test_defended_model_parameters_are_the_models():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
    net = defended(model, JPEG(90))
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in model.parameters())
    assert net(torch.rand(4, 3, 8, 8)).shape == (4, 10)


def test_defended_rejects_non_modules():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        defended(lambda x: x, JPEG(90))
    with pytest.raises(TypeError, match="defense must be a torch.nn.Module"):
        defended(nn.Identity(), lambda x: x)


def test_paper_settings_and_labels():
    assert defenses.PAPER_SETTINGS["JPEG"] == (95, 90, 85, 80)
    assert defenses.PAPER_SETTINGS["BitDepth"] == (1, 2, 3, 4)
    variants = defenses.paper_variants()
    assert list(variants) == [
        "JPEG-Quality=95",
        "JPEG-Quality=90",
        "JPEG-Quality=85",
        "JPEG-Quality=80",
        "TVM-Weight=0.03",
        "TVM-Weight=0.05",
        "TVM-Weight=0.07",
        "TVM-Weight=0.09",
        "Bit Reduction - Depth=1",
        "Bit Reduction - Depth=2",
        "Bit Reduction - Depth=3",
        "Bit Reduction - Depth=4",
        "Bilateral-Window=3",
        "Bilateral-Window=5",
        "Bilateral-Window=7",
        "Bilateral-Window=9",
    ]
    assert [m.quality for m in JPEG.paper_variants()] == [95, 90, 85, 80]
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(variants["Bit Reduction - Depth=2"](x), bit_depth(x, 2))


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: JPEG(0), ValueError, "JPEG: quality must be an integer in 1..100, got 0"),
        (lambda: JPEG(100.0), TypeError, "JPEG: quality must be an int"),
        (lambda: BitDepth(9), ValueError, "BitDepth: bits must be an integer in 1..8, got 9"),
        (lambda: BitDepth(True), TypeError, "BitDepth: bits must be an int"),
    ],
)
def test_invalid_settings_raise_at_construction(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_setting_checks_name_the_defense():
    check_number(3.5, "weight", low=0, low_open=True, where="TV")
    check_number(5, "window", low=1, odd=True, where="Bilateral")
    with pytest.raises(ValueError, match=r"TV: weight must be a finite number > 0, got 0"):
        check_number(0, "weight", low=0, low_open=True, where="TV")
    with pytest.raises(ValueError, match="Bilateral: window must be odd, got 4"):
        check_number(4, "window", low=1, odd=True, where="Bilateral")
    with pytest.raises(TypeError, match="Bilateral: window must be an int"):
        check_number(5.0, "window", odd=True, where="Bilateral")
    with pytest.raises(TypeError, match="TV: weight must be a number"):
        check_number("3", "weight", where="TV")


def test_modules_have_no_state_and_a_readable_repr():
    assert JPEG(80).state_dict() == {} and BitDepth(2).state_dict() == {}
    assert repr(defended(nn.Identity(), JPEG(80))).count("JPEG(quality=80)") == 1
