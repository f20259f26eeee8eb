"""jpeg: fidelity against PIL (libjpeg) on real photos and random images, every backend
against the plain-PyTorch reference, and bad inputs."""

import io

import numpy as np
import pytest
import torch
from PIL import Image, features

import orthocore
from orthocore import dispatch
from orthocore.formulas import jpeg_tables
from orthocore.ops import jpeg, jpeg_reference

skimage_data = pytest.importorskip("skimage.data")
skimage_transform = pytest.importorskip("skimage.transform")
BACKENDS = dispatch.registered()["jpeg"]

PAPER_RANGE = (75, 80, 85, 90, 95)  # the fidelity range checked (the paper uses 80..95)


def pil_roundtrip(x: torch.Tensor, quality: int) -> torch.Tensor:
    """PIL's JPEG encode + decode of each image of :math:`(B, C, H, W)` in [0, 1] (C = 1 or 3),
    4:2:0 chroma (PIL's default, ``subsampling=2``), 8-bit levels rint(255·x) in float64
    (float32 products can round onto or across a .5 tie)."""
    levels = torch.round(x.double() * 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    mode = "RGB" if x.shape[1] == 3 else "L"
    out = []
    for image in levels:
        buffer = io.BytesIO()
        Image.fromarray(image if mode == "RGB" else image[..., 0], mode).save(
            buffer, format="JPEG", quality=quality, subsampling=2
        )
        buffer.seek(0)
        decoded = np.asarray(Image.open(buffer).convert(mode))
        out.append(decoded if mode == "RGB" else decoded[..., None])
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).to(x.dtype) / 255


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB between two tensors of levels in [0, 1] (inf when equal)."""
    mse = float(((a.double() - b.double()) * 255).square().mean())
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def _photo(name: str, height: int, width: int, resize: bool) -> torch.Tensor:
    """A scikit-image sample photo as (1, C, height, width) in [0, 1], resized or cropped."""
    image = getattr(skimage_data, name)()
    if image.ndim == 2:
        image = image[..., None]
    if resize:
        image = skimage_transform.resize(image, (height, width), anti_aliasing=True, preserve_range=True)
    else:
        top, left = (image.shape[0] - height) // 3, (image.shape[1] - width) // 2
        image = image[top : top + height, left : left + width]
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255


PHOTOS = [
    ("astronaut", 32, 32, True),  # CIFAR-sized
    ("chelsea", 224, 224, True),  # ImageNet-sized
    ("coffee", 37, 53, False),  # odd sizes, crop
    ("astronaut", 101, 77, False),  # neither side a multiple of 8 or 16
    ("rocket", 57, 96, True),  # odd height
    ("camera", 45, 61, True),  # grayscale photo: a grayscale JPEG
]


@pytest.mark.parametrize(("name", "height", "width", "resize"), PHOTOS, ids=lambda v: str(v))
def test_psnr_against_pil_on_photos(name, height, width, resize):
    x = _photo(name, height, width, resize)
    for quality in PAPER_RANGE:
        got = jpeg(x, quality)
        value = psnr(got, pil_roundtrip(x, quality))
        assert value >= 40, f"{name} {height}x{width} q={quality}: PSNR {value:.2f} dB"


@pytest.mark.parametrize("shape", [(4, 3, 32, 32), (2, 3, 37, 53), (2, 1, 23, 19), (1, 3, 224, 224)], ids=str)
def test_psnr_against_pil_on_random_images(shape):
    x = torch.rand(shape)
    for quality in PAPER_RANGE:
        value = psnr(jpeg(x, quality), pil_roundtrip(x, quality))
        assert value >= 40, f"{shape} q={quality}: PSNR {value:.2f} dB"


@pytest.mark.skipif(not features.check_feature("libjpeg_turbo"), reason="PIL is not built on libjpeg-turbo")
@pytest.mark.parametrize("quality", [1, 10, 50, 75, 90, 100])
def test_equals_libjpeg_turbo_exactly(quality):
    """Same arithmetic as libjpeg-turbo (islow DCT, fancy upsampling): identical pixels,
    including the edge cases of padding (odd sizes, H mod 16 = 12) and narrow planes."""
    photos = [_photo("coffee", 37, 53, False), _photo("chelsea", 44, 45, False), _photo("camera", 13, 9, False)]
    tiny = [torch.rand(1, 3, h, w) for h, w in [(1, 1), (2, 3), (3, 2), (5, 1), (4, 5)]]
    for x in photos + tiny + [torch.rand(1, 3, 224, 224)]:
        assert torch.equal(jpeg(x, quality), pil_roundtrip(x, quality)), f"{tuple(x.shape)} q={quality}"


def test_grayscale_is_luminance_only():
    """C = 1 never sees colour conversion or subsampling: a gray image's JPEG equals the
    luminance channel of the same image as RGB (equal R = G = B gives Y = level)."""
    gray = _photo("camera", 40, 40, True)
    rgb = gray.expand(1, 3, 40, 40)
    torch.testing.assert_close(jpeg(gray, 90), jpeg(rgb, 90)[:, :1], atol=1 / 255, rtol=0)


def test_quality_orders_the_error():
    x = _photo("astronaut", 64, 64, True)
    errors = [float((jpeg(x, q) - x).abs().mean()) for q in (20, 50, 80, 95)]
    assert errors == sorted(errors, reverse=True) and errors[-1] > 0


def test_quantisation_tables_follow_libjpeg_scaling():
    assert jpeg_tables.quant_tables(50)[0].tolist() == list(jpeg_tables.LUMINANCE_TABLE)
    assert jpeg_tables.quant_tables(100).eq(1).all()
    assert jpeg_tables.quant_tables(1).max() == 255  # baseline tables are clamped to 8 bits
    # quality 90: scale 20 %, (16 * 20 + 50) // 100 = 3
    assert jpeg_tables.quant_tables(90)[0, 0] == 3 and jpeg_tables.quant_tables(90)[1, 63] == 20


def test_integer_dct_matrices_invert_each_other():
    """Forward then inverse islow transform of a block is the identity up to rounding."""
    block = torch.randint(-128, 128, (8, 8), dtype=torch.int64)
    f, g = jpeg_tables.FDCT_MATRIX.double(), jpeg_tables.IDCT_MATRIX.double()
    s1, s2 = jpeg_tables.FDCT_SHIFTS
    coef = f @ block.double() @ f.T / 2 ** (s1 + s2)  # 8 x the JPEG DCT, as the quantiser sees it
    s1, s2 = jpeg_tables.IDCT_SHIFTS
    back = g @ (coef / 8) @ g.T / 2 ** (s1 + s2)  # the IDCT takes the dequantised JPEG DCT
    assert (back - block).abs().max() <= 1


# --------------------------------------------------------------------------- backends
SHAPES = [
    (1, 3, 1, 1),  # single pixel
    (2, 3, 2, 3),  # chroma planes too narrow for fancy upsampling
    (3, 3, 37, 53),  # odd sizes
    (2, 1, 19, 23),  # grayscale, odd
    (2, 3, 16, 32),  # whole MCUs
    (4, 3, 32, 32),  # CIFAR
]


def _backends(device):
    return BACKENDS.compiled_for(device)


def _levels(x):
    return torch.round(x.double() * 255)


def _assert_same_levels(got, want, backend, dtype):
    if backend == "triton" and dtype == torch.bfloat16 and got.device.type == "cpu":
        # Triton's interpreter truncates float32 -> bfloat16 (the GPU rounds to nearest).
        torch.testing.assert_close(got, want, atol=0, rtol=2**-7)
    else:
        assert torch.equal(_levels(got), _levels(want)), f"{backend}: {(got != want).sum()} values differ"
        torch.testing.assert_close(got, want, atol=0, rtol=0)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16], ids=str)
def test_backends_match_reference(device, shape, dtype):
    backends = _backends(device)
    if not backends:
        pytest.skip(f"no compiled backend for {device}")
    x = torch.rand(shape, device=device).to(dtype)
    for quality in (1, 50, 95, 100):
        want = jpeg_reference(x, quality)
        assert want.dtype == dtype and want.shape == x.shape
        for backend in backends:
            with orthocore.use_backend(backend):
                _assert_same_levels(jpeg(x, quality), want, backend, dtype)


def test_extreme_patterns_stay_in_integer_range(device):
    """Checkerboards and stripes at quality 100 (all divisors 1) give the largest DCT
    coefficients: the int32 kernels must agree with the int64 reference."""
    r = torch.arange(16, device=device)
    patterns = [
        ((r[:, None] + r[None, :]) % 2).float(),  # checkerboard
        (r[None, :] % 2).float().expand(16, 16),  # vertical stripes
        ((r[:, None] // 8 + r[None, :] // 8) % 2).float(),  # block checkerboard
    ]
    x = torch.stack([p.expand(3, 16, 16) for p in patterns] + [1 - p.expand(3, 16, 16) for p in patterns])
    want = jpeg_reference(x, 100)
    for backend in _backends(device):
        with orthocore.use_backend(backend):
            assert torch.equal(jpeg(x, 100), want), backend


def test_non_contiguous_input(device):
    base = torch.rand(4, 3, 40, 36, device=device)
    x = base.transpose(2, 3)[::2]  # (2, 3, 36, 40), strided
    assert not x.is_contiguous()
    want = jpeg_reference(x.contiguous(), 85)
    for backend in ["reference"] + _backends(device):
        with orthocore.use_backend(backend):
            assert torch.equal(jpeg(x, 85), want), backend


def test_empty_batch(device):
    for backend in ["reference"] + _backends(device):
        with orthocore.use_backend(backend):
            assert jpeg(torch.rand(0, 3, 8, 8, device=device), 90).shape == (0, 3, 8, 8)


def test_output_never_requires_grad():
    x = torch.rand(2, 3, 8, 8, requires_grad=True)
    y = jpeg(x, 90)
    assert not y.requires_grad and x.grad is None


def test_torch_compile_fullgraph():
    x = torch.rand(2, 3, 20, 20)
    compiled = torch.compile(lambda t: jpeg(t * 0.5, 80), fullgraph=True, backend="aot_eager")
    assert torch.equal(compiled(x), jpeg(x * 0.5, 80))


def test_opcheck():
    for shape in [(2, 3, 9, 17), (1, 1, 8, 8), (0, 3, 4, 4)]:
        torch.library.opcheck(torch.ops.orthocore.jpeg.default, (torch.rand(shape), 75))


@pytest.mark.parametrize(
    ("x", "quality", "error", "match"),
    [
        (torch.full((1, 3, 4, 4), float("nan")), 90, ValueError, "NaN"),
        (torch.full((1, 3, 4, 4), 1.5), 90, ValueError, r"in \[0, 1\]"),
        (torch.full((1, 3, 4, 4), -0.1), 90, ValueError, r"in \[0, 1\]"),
        (torch.rand(1, 3, 4, 4), 0, ValueError, "quality must be an integer in 1..100"),
        (torch.rand(1, 3, 4, 4), 101, ValueError, "quality must be an integer in 1..100"),
        (torch.rand(1, 3, 4, 4), 90.0, TypeError, "quality must be an int"),
        (torch.rand(1, 3, 4, 4), True, TypeError, "quality must be an int"),
        (torch.rand(3, 4, 4), 90, ValueError, r"\(B, C, H, W\)"),
        (torch.rand(1, 2, 4, 4), 90, ValueError, "1 or 3 channels"),
        (torch.ones(1, 3, 4, 4, dtype=torch.uint8), 90, TypeError, "floating-point"),
        (torch.rand(1, 3, 0, 4), 90, ValueError, "at least 1×1"),
    ],
)
def test_invalid_inputs_raise(x, quality, error, match):
    with pytest.raises(error, match=match):
        jpeg(x, quality)
    if error is ValueError and "quality" not in match:
        with pytest.raises(error, match=match):
            jpeg_reference(x, quality)
