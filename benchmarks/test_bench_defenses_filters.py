"""Speed of the TVM and bilateral defenses against their peers, side by side.

Groups (one per batch shape, and per window for the bilateral filter):

* ``tv``: orthocore's ``tv_denoise`` (50 iterations), its plain-PyTorch reference,
  scikit-image's ``denoise_tv_chambolle`` image by image at the same 50 iterations
  (``eps=0``), and ART's ``TotalVarMin`` with its defaults (scipy L-BFGS per image and
  channel, 10 iterations, keep rate 0.3). ART takes seconds per image, so it runs on the
  first few images of the batch and its time is scaled to the whole batch.
* ``bilateral``: orthocore's ``bilateral``, its reference, OpenCV's ``bilateralFilter``
  image by image on the 8-bit HWC version of the batch, and kornia's ``bilateral_blur``
  (square window, L1 colour distance); also on a Fashion-MNIST-shaped grey batch.
* ``bilateral gradient``: forward and backward (the gradient a white-box attacker takes
  through the filter, BPDA): orthocore's op (the CPU backward kernel), autograd through
  its reference, and autograd through kornia's ``bilateral_blur``.

Rounds: 30 for orthocore's millisecond calls (a median of 5 moved by 2x between runs
with the machine's noise), 10 for OpenCV, 5 for kornia, 2 for the slow references.
Each timed call is checked against its oracle first, so a broken kernel cannot look
fast. The targets (TV ≥ 50x faster than ART and ≥ 2x faster than skimage; bilateral
within 1.5x of OpenCV and ≥ 5x faster than kornia) are read from the ratio table that
``benchmarks/conftest.py`` prints at the end of the run.

Run: ``make bench`` or ``.venv/bin/python -m pytest benchmarks/test_bench_defenses_filters.py
--benchmark-group-by=group --benchmark-columns=min,median,rounds -s``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import orthocore
from orthocore.ops import bilateral, bilateral_reference, tv_denoise, tv_denoise_reference

SHAPES = {"256x3x32x32": (256, 3, 32, 32), "16x3x224x224": (16, 3, 224, 224)}
GREY = {"256x1x28x28": (256, 1, 28, 28)}  # Fashion-MNIST: rows of 28 pixels, one channel
ART_IMAGES = {"256x3x32x32": 16, "16x3x224x224": 1}  # ART runs on this many, scaled to the batch
TV_WEIGHT, TV_ITERS = 0.05, 50
WINDOWS = (3, 9)
SIGMA_COLOR, SIGMA_SPACE = 75 / 255, 75.0


def _batch(shape: tuple[int, ...]) -> torch.Tensor:
    """A batch of natural-looking images on the 8-bit grid: smooth random fields plus noise."""
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand(shape[0], shape[1], 8, 8, generator=generator)
    smooth = torch.nn.functional.interpolate(coarse, size=shape[2:], mode="bilinear", align_corners=False)
    noisy = smooth + 0.05 * torch.randn(shape, generator=generator)
    return (noisy.clamp(0, 1) * 255).round() / 255


def _hwc(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy())


def _run(benchmark, group: str, provider: str, fn, rounds: int, scale: float = 1.0):
    benchmark.group = group
    benchmark.extra_info["provider"] = provider
    result = benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1 if rounds > 1 else 0)
    benchmark.extra_info["scale"] = scale  # peers timed on a sample of the batch
    return result


# ------------------------------------------------------------------------------- TV
@pytest.mark.parametrize("size", SHAPES)
@pytest.mark.parametrize("provider", ["orthocore", "reference", "skimage", "art"])
def test_tv(benchmark, size, provider):
    x = _batch(SHAPES[size])
    group = f"tv {size}"
    if provider == "orthocore":
        out = _run(benchmark, group, provider, lambda: tv_denoise(x, TV_WEIGHT, TV_ITERS), rounds=5)
        torch.testing.assert_close(out, tv_denoise_reference(x, TV_WEIGHT, TV_ITERS), atol=1e-4, rtol=0)
    elif provider == "reference":
        with orthocore.use_backend("reference"):
            _run(benchmark, group, provider, lambda: tv_denoise(x, TV_WEIGHT, TV_ITERS), rounds=2)
    elif provider == "skimage":
        restoration = pytest.importorskip("skimage.restoration")
        images = _hwc(x)

        def run():
            return [
                restoration.denoise_tv_chambolle(im, weight=TV_WEIGHT, max_num_iter=TV_ITERS, eps=0, channel_axis=-1)
                for im in images
            ]

        out = _run(benchmark, group, provider, run, rounds=2)
        ours = _hwc(tv_denoise(x[:1], TV_WEIGHT, TV_ITERS))[0]
        assert np.abs(out[0] - ours).max() <= 1e-3
    else:
        preprocessor = pytest.importorskip("art.defences.preprocessor")
        count = ART_IMAGES[size]
        images = _hwc(x[:count])
        defence = preprocessor.TotalVarMin(clip_values=(0.0, 1.0))
        out, _ = _run(benchmark, group, provider, lambda: defence(images), rounds=1, scale=x.shape[0] / count)
        assert out.shape == images.shape and np.isfinite(out).all()


# ------------------------------------------------------------------------ bilateral
@pytest.mark.parametrize("size", SHAPES | GREY)
@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("provider", ["orthocore", "reference", "opencv", "kornia"])
def test_bilateral(benchmark, size, window, provider):
    x = _batch((SHAPES | GREY)[size])
    group = f"bilateral d={window} {size}"
    if provider == "orthocore":
        out = _run(benchmark, group, provider, lambda: bilateral(x, window, SIGMA_COLOR, SIGMA_SPACE), rounds=30)
        want = bilateral_reference(x[:2], window // 2, SIGMA_COLOR, SIGMA_SPACE)
        torch.testing.assert_close(out[:2], want, atol=2e-6, rtol=0)
    elif provider == "reference":
        with orthocore.use_backend("reference"):
            _run(benchmark, group, provider, lambda: bilateral(x, window, SIGMA_COLOR, SIGMA_SPACE), rounds=2)
    elif provider == "opencv":
        cv2 = pytest.importorskip("cv2")
        images = np.round(_hwc(x) * 255).astype(np.uint8)
        out = _run(
            benchmark,
            group,
            provider,
            lambda: [cv2.bilateralFilter(im, window, SIGMA_COLOR * 255, SIGMA_SPACE) for im in images],
            rounds=10,
        )
        ours = _hwc(bilateral(x[:1], window, SIGMA_COLOR, SIGMA_SPACE))[0]
        assert np.abs(out[0].reshape(ours.shape) / 255 - ours).max() <= 2 / 255  # OpenCV drops a grey channel
    else:
        kornia = pytest.importorskip("kornia")

        def run():
            return kornia.filters.bilateral_blur(x, window, SIGMA_COLOR, (SIGMA_SPACE, SIGMA_SPACE), "reflect", "l1")

        out = _run(benchmark, group, provider, run, rounds=5)
        assert out.shape == x.shape and torch.isfinite(out).all()


@pytest.mark.parametrize("size", ["256x3x32x32", *GREY])
@pytest.mark.parametrize("provider", ["orthocore", "reference", "kornia"])
def test_bilateral_gradient(benchmark, size, provider):
    x = _batch((SHAPES | GREY)[size])
    upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    filters = {
        "orthocore": lambda t: bilateral(t, 9, SIGMA_COLOR, SIGMA_SPACE),
        "reference": lambda t: bilateral_reference(t, 4, SIGMA_COLOR, SIGMA_SPACE),
        "kornia": lambda t: pytest.importorskip("kornia").filters.bilateral_blur(
            t, 9, SIGMA_COLOR, (SIGMA_SPACE, SIGMA_SPACE), "reflect", "l1"),
    }  # fmt: skip

    def gradient(name: str) -> torch.Tensor:
        leaf = x.clone().requires_grad_()
        return torch.autograd.grad(filters[name](leaf), leaf, upstream)[0]

    got = _run(benchmark, f"bilateral gradient d=9 {size}", provider, lambda: gradient(provider),
               rounds={"orthocore": 10, "reference": 2, "kornia": 2}[provider])  # fmt: skip
    if provider == "orthocore":
        torch.testing.assert_close(got[:4], gradient("reference")[:4], atol=1e-5, rtol=1e-4)
    assert torch.isfinite(got).all()
