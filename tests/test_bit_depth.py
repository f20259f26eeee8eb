"""bit_depth: exact against numpy's formula (and ART's FeatureSqueezing where it is
installed), every backend against the reference, bad inputs."""


import numpy as np
import pytest
import torch


import orthocore
from orthocore import dispatch
from orthocore.ops import bit_depth, bit_depth_reference

BACKENDS = dispatch.registered()["bit_depth"]
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def _images(shape, dtype, device="cpu"):
    """Random images plus every 8-bit level and every midpoint between two levels (ties
    of rint for several depths)."""
    x = torch.rand(shape, dtype=torch.float64, device=device)
    flat = x.view(-1)
    flat[:256] = torch.arange(256, device=device) / 255
    flat[256:511] = (torch.arange(255, device=device) + 0.5) / 255
    return x.to(dtype)


def numpy_squeeze(x: np.ndarray, bits: int) -> np.ndarray:
    """The formula of feature squeezing (Xu et al.), in numpy's float64."""
    levels = 2.0**bits - 1
    return np.rint(x.astype(np.float64) * levels) / levels


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_exact_against_numpy(dtype):
    x = _images((4, 3, 17, 19), dtype)
    for bits in range(1, 9):
        want = torch.from_numpy(numpy_squeeze(x.numpy(), bits)).to(dtype)
        assert torch.equal(bit_depth(x, bits), want), bits
        assert torch.equal(bit_depth_reference(x, bits), want), bits


def test_exact_against_art_feature_squeezing():
    preprocessor = pytest.importorskip("art.defences.preprocessor")
    x = _images((8, 3, 32, 32), torch.float32)
    for bits in (1, 2, 3, 4, 8):
        squeezed, _ = preprocessor.FeatureSqueezing(clip_values=(0.0, 1.0), bit_depth=bits)(x.numpy())
        assert torch.equal(bit_depth(x, bits), torch.from_numpy(squeezed).float()), bits


def test_values_are_on_the_grid():
    x = torch.rand(2, 3, 8, 8)
    for bits in (1, 3, 5):
        levels = bit_depth(x, bits) * (2**bits - 1)
        torch.testing.assert_close(levels, levels.round(), atol=1e-5, rtol=0)
        assert levels.unique().numel() <= 2**bits
        assert (bit_depth(x, bits) - x).abs().max() <= 0.5 / (2**bits - 1) + 1e-6


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 3, 37, 53), (2, 1, 5, 1030)], ids=str)
def test_backends_match_reference(device, dtype, shape):
    backends = BACKENDS.compiled_for(device)
    if not backends:
        pytest.skip(f"no compiled backend for {device}")
    x = _images(shape, dtype, device) if np.prod(shape) >= 511 else torch.rand(shape, device=device).to(dtype)
    for bits in range(1, 9):
        want = bit_depth_reference(x, bits)
        for backend in backends:
            with orthocore.use_backend(backend):
                got = bit_depth(x, bits)
            assert got.dtype == dtype and got.shape == x.shape
            if backend == "triton" and dtype == torch.bfloat16 and device.type == "cpu":
                # Triton's interpreter truncates float -> bfloat16 (the GPU rounds to nearest).
                torch.testing.assert_close(got, want, atol=0, rtol=2**-7)
            else:
                assert torch.equal(got, want), f"{backend} bits={bits}"


def test_non_contiguous_and_empty(device):
    x = torch.rand(4, 3, 10, 12, device=device).transpose(2, 3)[::2]
    for backend in ["reference"] + BACKENDS.compiled_for(device):
        with orthocore.use_backend(backend):
            assert torch.equal(bit_depth(x, 3), bit_depth_reference(x.contiguous(), 3)), backend
            assert bit_depth(torch.rand(0, 3, 4, 4, device=device), 2).shape == (0, 3, 4, 4)


def test_output_never_requires_grad_and_compiles():
    x = torch.rand(2, 3, 8, 8, requires_grad=True)
    assert not bit_depth(x, 2).requires_grad
    compiled = torch.compile(lambda t: bit_depth(t, 4) + 1, fullgraph=True, backend="aot_eager")
    assert torch.equal(compiled(x.detach()), bit_depth(x, 4) + 1)
    torch.library.opcheck(torch.ops.orthocore.bit_depth.default, (torch.rand(2, 3, 5, 7), 3))


@pytest.mark.parametrize(
    ("x", "bits", "error", "match"),
    [
        (torch.full((1, 3, 2, 2), float("nan")), 2, ValueError, "NaN"),
        (torch.full((1, 3, 2, 2), 1.01), 2, ValueError, r"in \[0, 1\]"),
        (torch.rand(1, 3, 2, 2), 0, ValueError, "bits must be an integer in 1..8"),
        (torch.rand(1, 3, 2, 2), 9, ValueError, "bits must be an integer in 1..8"),
        (torch.rand(1, 3, 2, 2), 2.0, TypeError, "bits must be an int"),
        (torch.rand(3, 2, 2), 2, ValueError, r"\(B, C, H, W\)"),
        (torch.ones(1, 3, 2, 2, dtype=torch.int32), 2, TypeError, "floating-point"),
    ],
)
def test_invalid_inputs_raise(x, bits, error, match):
    with pytest.raises(error, match=match):
        bit_depth(x, bits)
