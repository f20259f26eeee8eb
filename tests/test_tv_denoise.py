"""tv_denoise: fidelity to scikit-image's Chambolle solver on photos and random images,
every backend against the plain-PyTorch reference, the pixel-dropout variant, bad input."""

import importlib

import numpy as np
import pytest
import torch


import orthocore
from orthocore import dispatch
from orthocore.ops import tv_denoise, tv_denoise_reference, tv_reconstruct
from orthocore.ops.tv_denoise import masked_tv_energy, random_keep_mask
from tests._photos import PHOTOS, photo

restoration = pytest.importorskip("skimage.restoration")
BACKENDS = dispatch.registered()["tv_denoise"]


def _skimage(image: np.ndarray, weight: float, iters: int) -> np.ndarray:
    channel_axis = -1 if image.ndim == 3 else None
    return restoration.denoise_tv_chambolle(image, weight=weight, max_num_iter=iters, eps=0, channel_axis=channel_axis)


def _as_batch(image: np.ndarray) -> torch.Tensor:
    """(H, W, C) or (H, W) numpy → (1, C, H, W) tensor."""
    array = image[..., None] if image.ndim == 2 else image
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None]


def _as_image(batch: torch.Tensor, like: np.ndarray) -> np.ndarray:
    return batch[0].permute(1, 2, 0).numpy().reshape(like.shape)


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize(("height", "width"), [(32, 32), (37, 45), (61, 50), (224, 224)], ids=str)
@pytest.mark.parametrize("weight", [0.03, 0.09])
def test_matches_skimage_on_photos(name, height, width, weight):
    """Acceptance: max |ours − skimage| ≤ 1e-3 at equal weight and iteration count (skimage
    with eps=0 runs them all); we measure ~1e-7 and hold it to 1e-4."""
    image = photo(name, height, width)
    iters = 50
    got = _as_image(tv_denoise(_as_batch(image), weight, iters), image)
    want = _skimage(image, weight, iters)
    assert np.abs(got - want).max() <= 1e-4


@pytest.mark.parametrize("iters", [1, 2, 7, 100])
@pytest.mark.parametrize("weight", [0.01, 0.05, 0.5])
def test_matches_skimage_on_random_images(iters, weight):
    rng = np.random.default_rng(iters)
    image = rng.random((23, 31, 3), dtype=np.float32)
    got = _as_image(tv_denoise(_as_batch(image), weight, iters), image)
    assert np.abs(got - _skimage(image, weight, iters)).max() <= 1e-4


@pytest.mark.parametrize("weight", [0.03, 0.09])
def test_default_iterations_beat_skimage_default_stopping(weight):
    """No early stop here: the default 50 iterations end closer to the ROF minimiser (1000
    iterations) than skimage's default call, which stops once the energy changes by less
    than eps=2e-4 of its first value."""
    image = photo("astronaut", 32, 32)
    converged = _as_image(tv_denoise(_as_batch(image), weight, 1000), image)
    ours = _as_image(tv_denoise(_as_batch(image), weight), image)
    skimage_default = restoration.denoise_tv_chambolle(image, weight=weight, channel_axis=-1)
    assert np.abs(ours - converged).max() < np.abs(skimage_default - converged).max()


def test_reference_is_skimage_iteration():
    image = photo("coffee", 19, 26)
    got = _as_image(tv_denoise_reference(_as_batch(image).double(), 0.07, 30), image)
    assert np.abs(got - _skimage(image.astype(np.float64), 0.07, 30)).max() <= 1e-12


SHAPES = [
    (1, 1, 1, 1),  # a single pixel
    (2, 3, 1, 7),  # one row
    (2, 3, 7, 1),  # one column
    (3, 2, 13, 17),  # primes
    (4, 3, 32, 32),  # a CIFAR batch (the CPU kernel's flat-plane path)
    (1, 2, 67, 71),  # planes over 64x64 pixels (its row-streaming path)
    (0, 3, 8, 8),  # empty batch
    (2, 0, 8, 8),  # no channels
]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("iters", [1, 2, 9])
def test_backends_match_reference(device, shape, dtype, iters):
    backends = BACKENDS.compiled_for(device)
    if not backends:
        pytest.skip(f"no compiled backend for {device}")
    x = torch.rand(shape, dtype=dtype, device=device)
    want = tv_denoise_reference(x, 0.1, iters)
    for backend in backends:
        with orthocore.use_backend(backend):
            got = tv_denoise(x, 0.1, iters)
        assert got.dtype == dtype and got.shape == x.shape
        torch.testing.assert_close(got, want, atol=1e-6 if dtype == torch.float32 else 1e-12, rtol=0, msg=backend)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_precision_within_twice_reference_error(device, dtype):
    """Half inputs accumulate in float32: error vs a float64 oracle at most twice that of
    the reference run on the same half input."""
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64, device=device).to(dtype)
    oracle = tv_denoise_reference(x.double(), 0.05, 20)
    reference_error = (tv_denoise_reference(x, 0.05, 20).double() - oracle).abs().max()
    for backend in BACKENDS.compiled_for(device):
        with orthocore.use_backend(backend):
            got = tv_denoise(x, 0.05, 20)
        assert got.dtype == dtype
        assert (got.double() - oracle).abs().max() <= 2 * reference_error + 1e-3, backend


def test_non_contiguous_input(device):
    base = torch.rand(6, 3, 20, 18, device=device)
    x = base.transpose(2, 3)[::2]  # (3, 3, 18, 20), strided
    assert not x.is_contiguous()
    want = tv_denoise_reference(x.contiguous(), 0.05, 6)
    for backend in ["reference"] + BACKENDS.compiled_for(device):
        with orthocore.use_backend(backend):
            torch.testing.assert_close(tv_denoise(x, 0.05, 6), want, atol=1e-6, rtol=0, msg=backend)


def test_preserves_plane_means_and_constants(device):
    """−div p sums to zero over a plane (Neumann boundary): means are kept exactly, and a
    constant plane is a fixed point."""
    x = torch.rand(3, 2, 15, 12, dtype=torch.float64, device=device)
    x[1, 1] = 0.25
    y = tv_denoise(x, 0.2, 40)
    torch.testing.assert_close(y.mean((2, 3)), x.mean((2, 3)), atol=1e-12, rtol=0)
    assert torch.equal(y[1, 1], x[1, 1])
    assert y.diff(dim=-1).abs().sum() < x.diff(dim=-1).abs().sum()  # smoother


def test_larger_weight_smooths_more():
    x = _as_batch(photo("chelsea", 32, 32))
    variation = [tv_denoise(x, w, 50).diff(dim=-1).abs().sum().item() for w in (0.03, 0.05, 0.07, 0.09)]
    assert variation == sorted(variation, reverse=True)


def test_opcheck_and_compile(device):
    x = torch.rand(2, 3, 9, 11, device=device)
    torch.library.opcheck(torch.ops.orthocore.tv_denoise.default, (x, 0.05, 3))
    compiled = torch.compile(lambda t: tv_denoise(t, 0.05, 3) * 2, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), tv_denoise(x, 0.05, 3) * 2)


@pytest.mark.parametrize(
    ("x", "weight", "iters", "error", "match"),
    [
        (torch.full((1, 1, 4, 4), float("nan")), 0.1, 5, ValueError, "finite"),
        (torch.full((1, 1, 4, 4), float("inf")), 0.1, 5, ValueError, "finite"),
        (torch.full((1, 1, 4, 4), 1.5), 0.1, 5, ValueError, r"\[0, 1\]"),
        (torch.full((1, 1, 4, 4), -0.1), 0.1, 5, ValueError, r"\[0, 1\]"),
        (torch.rand(1, 4, 4), 0.1, 5, ValueError, r"\(B, C, H, W\)"),
        (torch.rand(1, 1, 1, 4, 4), 0.1, 5, ValueError, r"\(B, C, H, W\)"),
        (torch.ones(1, 1, 4, 4, dtype=torch.int64), 0.1, 5, TypeError, "floating-point"),
        (torch.rand(1, 1, 4, 4), 0.0, 5, ValueError, "weight must be a finite number > 0"),
        (torch.rand(1, 1, 4, 4), -1.0, 5, ValueError, "weight"),
        (torch.rand(1, 1, 4, 4), float("nan"), 5, ValueError, "weight"),
        (torch.rand(1, 1, 4, 4), 0.1, 0, ValueError, "iters must be an integer >= 1"),
        (torch.rand(1, 1, 4, 4), 0.1, 2.5, ValueError, "iters"),
    ],
)
def test_invalid_inputs_raise(x, weight, iters, error, match):
    with pytest.raises(error, match=match):
        tv_denoise(x, weight, iters)


# ---------------------------------------------------------------- pixel-dropout variant
def test_keep_mask_rate_and_reproducibility():
    x = torch.rand(4, 3, 64, 64)
    first = random_keep_mask(x, 0.5, torch.Generator().manual_seed(3))
    again = random_keep_mask(x, 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(first, again)
    assert set(first.unique().tolist()) == {0.0, 1.0}
    assert abs(first.mean().item() - 0.5) < 0.01
    with pytest.raises(ValueError, match="keep_prob"):
        random_keep_mask(x, 0.0)


def test_reconstruction_with_every_pixel_kept_is_tv_denoise():
    x = torch.rand(2, 3, 12, 10)
    torch.testing.assert_close(tv_reconstruct(x, torch.ones_like(x), 0.05, 20, rounds=3), tv_denoise(x, 0.05, 20))


def test_reconstruction_lowers_the_masked_objective():
    """Each majorise-minimise round may not raise the masked ROF objective; the result
    beats both the neighbourhood fill it starts from and plain TV on the dropped image."""
    x = _as_batch(photo("astronaut", 32, 32)).repeat(2, 1, 1, 1)
    keep = random_keep_mask(x, 0.5, torch.Generator().manual_seed(0))
    weight = 0.05
    energies = [masked_tv_energy(tv_reconstruct(x, keep, weight, 100, rounds), x, keep, weight) for rounds in (1, 2, 4, 8)]
    for before, after in zip(energies, energies[1:]):
        assert (after <= before * (1 + 1e-6)).all()
    fill = importlib.import_module("orthocore.ops.tv_denoise")._neighbourhood_fill(x, keep)
    plain = tv_denoise(keep * x, weight, 100)
    assert (energies[-1] < masked_tv_energy(fill, x, keep, weight)).all()
    assert (energies[-1] < masked_tv_energy(plain, x, keep, weight)).all()


def test_reconstruction_recovers_dropped_pixels():
    """Dropped pixels come back close to the photo (they were never seen)."""
    x = _as_batch(photo("chelsea", 48, 48))
    keep = random_keep_mask(x, 0.5, torch.Generator().manual_seed(1))
    y = tv_reconstruct(x, keep, 0.03, 50, rounds=4)
    dropped = keep == 0
    assert (y - x).abs()[dropped].mean() < 0.5 * (x - x.mean()).abs()[dropped].mean()


def test_reconstruction_checks_its_mask():
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="keep must have shape"):
        tv_reconstruct(x, torch.ones(1, 3, 8, 7), 0.05)
    with pytest.raises(ValueError, match="rounds"):
        tv_reconstruct(x, torch.ones_like(x), 0.05, rounds=0)


def test_reconstruction_refuses_a_mask_outside_0_1():
    """keep = 2.0 used to return values outside [0, 1]; the mask is checked like an image."""
    with pytest.raises(ValueError, match=r"tv_denoise: keep must be in \[0, 1\]"):
        tv_reconstruct(torch.rand(1, 3, 8, 8), torch.full((1, 3, 8, 8), 2.0), 0.05)


@pytest.mark.parametrize("shape", [(2, 3, 5, 5), (0, 1, 1, 1)], ids=str)
def test_one_iteration_is_a_copy_on_every_backend_never_the_input_itself(shape):
    """With one iteration the result equals the input; returning the input tensor itself
    would break the custom op's no-alias rule (found by tests/test_fuzz.py)."""
    x = torch.rand(shape)
    for backend in ["reference", *BACKENDS.compiled_for(x.device)]:
        with orthocore.use_backend(backend):
            out = tv_denoise(x, 0.1, 1)
        assert torch.equal(out, x), backend
        assert x.numel() == 0 or out.data_ptr() != x.data_ptr(), backend
