"""The TVM and bilateral defense modules: the paper's settings, agreement with the ops,
the randomised TVM variant, argument checks at construction."""

import pytest
import torch

from orthocore.defenses import Bilateral, TVDenoise
from orthocore.defenses import bilateral as bilateral_defense
from orthocore.ops import bilateral, tv_denoise


def test_paper_settings_are_the_four_table_iii_variants():
    assert [m.label for m in TVDenoise.paper_variants()] == [f"TVM-Weight=0.0{w}" for w in (3, 5, 7, 9)]
    assert [m.weight for m in TVDenoise.paper_variants()] == pytest.approx([0.03, 0.05, 0.07, 0.09])
    assert all(m.keep_prob == 1.0 for m in TVDenoise.paper_variants())
    assert [m.label for m in Bilateral.paper_variants()] == [f"Bilateral-Window={w}" for w in (3, 5, 7, 9)]
    assert all(m.sigma_color == bilateral_defense.SIGMA_COLOR for m in Bilateral.paper_variants())


def test_modules_apply_their_ops():
    x = torch.rand(3, 3, 17, 20)
    for module in TVDenoise.paper_variants():
        assert torch.equal(module(x), tv_denoise(x, module.weight, module.iters))
    for module in Bilateral.paper_variants():
        assert torch.equal(module(x), bilateral(x, module.window, module.sigma_color, module.sigma_space))


def test_defended_model_sees_the_filtered_image():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
    x = torch.rand(2, 3, 8, 8)
    for defense in (TVDenoise(0.05), Bilateral(5)):
        torch.testing.assert_close(torch.nn.Sequential(defense, model)(x), model(defense(x)))


def test_randomised_tvm_draws_a_fresh_mask_per_call():
    module = TVDenoise(0.05, iters=20, keep_prob=0.5, rounds=2)
    x = torch.rand(2, 3, 16, 16)
    torch.manual_seed(5)
    first = module(x)
    torch.manual_seed(5)
    assert torch.equal(module(x), first)  # seeded: reproducible
    assert not torch.equal(module(x), first)  # a new mask on the next call
    assert not torch.equal(first, tv_denoise(x, 0.05, 20))


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: TVDenoise(0.0), "weight"),
        (lambda: TVDenoise(0.05, iters=0), "iters"),
        (lambda: TVDenoise(0.05, keep_prob=1.5), "keep_prob"),
        (lambda: TVDenoise(0.05, keep_prob=0.5, rounds=0), "rounds"),
        (lambda: Bilateral(4), "window must be odd"),
        (lambda: Bilateral(-1), "window"),
        (lambda: Bilateral(3, sigma_color=0.0), "sigma_color"),
        (lambda: Bilateral(3, sigma_space=-1.0), "sigma_space"),
    ],
)
def test_bad_settings_raise_at_construction(build, match):
    with pytest.raises(ValueError, match=match):
        build()
