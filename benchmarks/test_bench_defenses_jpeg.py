"""Speed of the JPEG and bit-depth defenses against their peers, side by side per group.

* ``jpeg``: orthocore (C++ kernels; the whole batch in one call) vs the plain-PyTorch
  reference vs PIL (libjpeg-turbo encode + decode, one image at a time, as ART's
  JpegCompression does). Target: within 2x of PIL.
* ``bit_depth``: orthocore vs the reference vs ART's FeatureSqueezing (numpy), or the
  same numpy formula where ART is not installed.

Each timed callable's output is checked, so a broken kernel cannot look fast. Run with
``make bench`` (or ``python -m pytest benchmarks -q``).
"""


import pytest
import torch

import orthocore
from orthocore.ops import bit_depth, bit_depth_reference, jpeg, jpeg_reference
from tests.test_bit_depth import numpy_squeeze
from tests.test_jpeg import pil_roundtrip, psnr

SHAPES = {"256x3x32x32": (256, 3, 32, 32), "16x3x224x224": (16, 3, 224, 224)}
QUALITY = 90
BITS = 3


def _images(shape):
    torch.manual_seed(0)
    return torch.rand(shape)


def _art_feature_squeezing(bits):
    try:
        from art.defences.preprocessor import FeatureSqueezing
    except ImportError:
        return "numpy", lambda x: numpy_squeeze(x, bits)
    squeeze = FeatureSqueezing(clip_values=(0.0, 1.0), bit_depth=bits)
    return "ART", lambda x: squeeze(x)[0]


@pytest.mark.parametrize("size", list(SHAPES))
@pytest.mark.parametrize("provider", ["orthocore", "reference", "PIL"])
def test_jpeg(benchmark, size, provider):
    x = _images(SHAPES[size])
    benchmark.group = f"jpeg q={QUALITY} {size}"
    benchmark.extra_info["provider"] = provider
    if provider == "orthocore":
        with orthocore.use_backend("cpu"):
            out = benchmark(jpeg, x, QUALITY)
    elif provider == "reference":
        out = benchmark.pedantic(jpeg_reference, (x, QUALITY), rounds=3, iterations=1)
    else:
        out = benchmark(pil_roundtrip, x, QUALITY)
    assert psnr(out, pil_roundtrip(x, QUALITY)) >= 40


@pytest.mark.parametrize("size", list(SHAPES))
@pytest.mark.parametrize("provider", ["orthocore", "reference", "peer"])
def test_bit_depth(benchmark, size, provider):
    x = _images(SHAPES[size])
    name, peer = _art_feature_squeezing(BITS)
    benchmark.group = f"bit_depth bits={BITS} {size}"
    benchmark.extra_info["provider"] = name if provider == "peer" else provider
    if provider == "orthocore":
        with orthocore.use_backend("cpu"):
            out = benchmark(bit_depth, x, BITS)
    elif provider == "reference":
        out = benchmark(bit_depth_reference, x, BITS)
    else:
        array = x.numpy()
        out = torch.from_numpy(benchmark(peer, array)).float()
    assert torch.equal(out, torch.from_numpy(numpy_squeeze(x.numpy(), BITS)).float())
