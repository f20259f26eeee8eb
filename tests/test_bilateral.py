"""bilateral: fidelity to OpenCV's bilateralFilter on photos and random 8-bit images,
reflect-101 borders, every backend against the plain-PyTorch reference (forward and
backward), gradcheck, double backward, torch.func and torch.compile, bad input."""


import numpy as np
import pytest
import torch


import orthocore
from orthocore import dispatch
from orthocore.ops import bilateral, bilateral_reference
from orthocore.ops.bilateral import bilateral_backward_reference, pad_reflect_101, reflect_101_indices, window_taps
from tests._photos import PHOTOS, photo

cv2 = pytest.importorskip("cv2")
BACKENDS = dispatch.registered()["bilateral"]
BACKWARD_BACKENDS = dispatch.registered()["bilateral_backward"]


def _opencv(image: np.ndarray, window: int, sigma_color: float, sigma_space: float) -> np.ndarray:
    """OpenCV on the 8-bit version of a [0, 1] image, back on the [0, 1] scale."""
    image8 = np.round(image * 255).astype(np.uint8)
    return cv2.bilateralFilter(image8, window, sigma_color * 255, sigma_space).astype(np.float32) / 255


def _ours(image: np.ndarray, window: int, sigma_color: float, sigma_space: float) -> np.ndarray:
    array = image[..., None] if image.ndim == 2 else image
    x = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None]
    return bilateral(x, window, sigma_color, sigma_space)[0].permute(1, 2, 0).numpy().reshape(image.shape)


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize(("height", "width"), [(32, 32), (37, 45), (61, 50), (224, 224)], ids=str)
@pytest.mark.parametrize("window", [3, 5, 7, 9])
def test_matches_opencv_on_photos(name, height, width, window):
    """Acceptance: max difference ≤ 2/255 on 8-bit-valued images (colour and grey)."""
    image = photo(name, height, width)
    for sigma_color, sigma_space in [(75 / 255, 75.0), (0.1, 2.0)]:
        got = _ours(image, window, sigma_color, sigma_space)
        want = _opencv(image, window, sigma_color, sigma_space)
        assert np.abs(got - want).max() <= 2 / 255, (sigma_color, sigma_space)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(("height", "width", "window"), [(5, 7, 9), (17, 3, 5), (1, 9, 3), (40, 23, 7)], ids=str)
def test_matches_opencv_on_random_images(channels, height, width, window):
    """Random 8-bit images, windows wider than the image included (repeated reflection)."""
    rng = np.random.default_rng(height * width)
    shape = (height, width, channels) if channels == 3 else (height, width)
    image = (rng.integers(0, 256, shape) / 255).astype(np.float32)
    for sigma_color in (0.05, 0.3):
        got = _ours(image, window, sigma_color, 3.0)
        assert np.abs(got - _opencv(image, window, sigma_color, 3.0)).max() <= 2 / 255


@pytest.mark.parametrize(("size", "radius"), [(1, 3), (2, 5), (5, 2), (5, 4), (4, 9), (9, 4)])
def test_reflect_101_matches_opencv_borders(size, radius):
    row = np.arange(size, dtype=np.uint8)[None, :]
    want = cv2.copyMakeBorder(row, 0, 0, radius, radius, cv2.BORDER_REFLECT_101)[0]
    assert reflect_101_indices(size, radius).tolist() == want.tolist()
    x = torch.rand(2, 3, size, size + 1)
    padded = pad_reflect_101(x, radius)
    rows, cols = reflect_101_indices(size, radius), reflect_101_indices(size + 1, radius)
    assert torch.equal(padded, x[:, :, rows][:, :, :, cols])


def test_window_is_opencv_circle():
    taps = window_taps(2, 1.5)
    assert len(taps) == 13  # the 5x5 square without its 12 corners beyond radius 2
    assert (0, 0, 1.0) in taps
    assert all(dy * dy + dx * dx <= 4 for dy, dx, _ in taps)


def test_window_one_is_identity(device):
    x = torch.rand(2, 3, 7, 6, device=device)
    for backend in ["reference"] + BACKENDS.compiled_for(device):
        with orthocore.use_backend(backend):
            assert torch.equal(bilateral(x, 1, 0.1, 1.0), x), backend


SHAPES = [
    (1, 1, 1, 1),  # a single pixel
    (2, 3, 1, 40),  # one row, a 16-pixel block plus a tail
    (2, 3, 33, 1),  # one column
    (3, 2, 13, 17),  # two channels: the general path
    (2, 4, 9, 35),  # four channels
    (4, 3, 32, 32),  # a CIFAR batch (its 32-pixel rows: a backward compiled for that width)
    (3, 1, 8, 8),  # digits (8-pixel rows: the backward's other compiled-in widths, with 28)
    (2, 1, 6, 28),  # Fashion-MNIST's rows
    (0, 3, 8, 8),  # empty batch
]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("window", [3, 7])
def test_backends_match_reference(device, shape, dtype, window):
    backends = BACKENDS.compiled_for(device)
    if not backends:
        pytest.skip(f"no compiled backend for {device}")
    x = torch.rand(shape, dtype=dtype, device=device)
    radius = window // 2
    want = bilateral_reference(x, radius, 0.15, 2.0) if x.numel() else x
    for backend in backends:
        if backend == "triton" and device.type == "cpu" and window > 3 and shape[0] * shape[2] > 8:
            continue  # the interpreter runs the unrolled 7x7 window slowly; few-row shapes cover it
        with orthocore.use_backend(backend):
            got = bilateral(x, window, 0.15, 2.0)
        assert got.dtype == dtype and got.shape == x.shape
        tol = 2e-6 if dtype == torch.float32 or backend == "triton" else 1e-12  # triton works in float32
        torch.testing.assert_close(got, want, atol=tol, rtol=0, msg=backend)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("window", [3, 7])
def test_backward_backends_match_reference(device, shape, dtype, window):
    """The gradient through the colour weights and the reflected borders (windows wider
    than the image included), each backward kernel against autograd on the reference."""
    backends = BACKWARD_BACKENDS.compiled_for(device)
    if not backends:
        pytest.skip(f"no compiled backward for {device}")
    x = torch.rand(shape, dtype=dtype, device=device)
    x[..., ::3, ::2] = 0.5  # ties: neighbours equal to the centre, where |.| has no slope
    upstream = torch.randn_like(x)
    want = bilateral_backward_reference(upstream, x, window // 2, 0.15, 2.0)
    for backend in backends:
        with orthocore.use_backend(backend):
            leaf = x.clone().requires_grad_()
            (got,) = torch.autograd.grad(bilateral(leaf, window, 0.15, 2.0), leaf, upstream)
        assert got.dtype == dtype and got.shape == x.shape
        tol = 1e-5 if dtype == torch.float32 else 1e-12
        torch.testing.assert_close(got, want, atol=tol, rtol=tol, msg=backend)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize(("shape", "window"), [((2, 3, 5, 6), 5), ((1, 1, 3, 4), 9), ((2, 2, 4, 1), 3), ((1, 2, 3, 8), 5)], ids=str)
def test_gradcheck_float64(device, backend, shape, window):
    if backend != "reference" and backend not in BACKWARD_BACKENDS.compiled_for(device):
        pytest.skip(f"{backend} unavailable on {device}")
    x = torch.rand(shape, dtype=torch.float64, device=device, requires_grad=True)
    with orthocore.use_backend(backend):
        assert torch.autograd.gradcheck(lambda t: bilateral(t, window, 0.2, 3.0), (x,))


def test_gradgradcheck_float64(device):
    """A backward that is itself differentiated runs the reference's, which autograd differentiates."""
    x = torch.rand(2, 2, 4, 5, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda t: bilateral(t, 5, 0.2, 3.0), (x,))


def test_gradient_under_torch_func_and_compile(device):
    x = torch.rand(2, 3, 7, 9, device=device)
    want = torch.func.grad(lambda t: (bilateral_reference(t, 2, 0.2, 3.0) ** 2).sum())(x)
    torch.testing.assert_close(torch.func.grad(lambda t: (bilateral(t, 5, 0.2, 3.0) ** 2).sum())(x), want,
                               atol=1e-5, rtol=1e-5)  # fmt: skip
    compiled = torch.compile(lambda t: (bilateral(t, 5, 0.2, 3.0) ** 2).sum(), fullgraph=True, backend="aot_eager")
    leaf = x.clone().requires_grad_()
    torch.testing.assert_close(torch.autograd.grad(compiled(leaf), leaf)[0], want, atol=1e-5, rtol=1e-5)


def test_non_contiguous_input(device):
    base = torch.rand(4, 3, 21, 10, device=device)
    x = base.transpose(2, 3)[::2]  # (2, 3, 10, 21), strided
    want = bilateral_reference(x, 2, 0.2, 3.0)
    for backend in ["reference"] + BACKENDS.compiled_for(device):
        with orthocore.use_backend(backend):
            torch.testing.assert_close(bilateral(x, 5, 0.2, 3.0), want, atol=2e-6, rtol=0, msg=backend)


def test_edges_survive_and_flat_noise_is_smoothed():
    x = torch.zeros(1, 3, 16, 16)
    x[..., 8:] = 0.8
    noisy = (x + 0.02 * torch.randn_like(x)).clamp(0, 1)
    y = bilateral(noisy, 5, 0.2, 3.0)
    assert (y[..., 7] - y[..., 8]).abs().min() > 0.7  # the edge is kept
    assert (y - x).abs().mean() < 0.7 * (noisy - x).abs().mean()  # the noise is reduced


def test_opcheck_and_compile(device):
    x = torch.rand(2, 3, 9, 11, device=device)
    torch.library.opcheck(torch.ops.orthocore.bilateral.default, (x, 5, 0.1, 2.0))
    torch.library.opcheck(torch.ops.orthocore.bilateral.default, (x.clone().requires_grad_(), 5, 0.1, 2.0))
    torch.library.opcheck(torch.ops.orthocore.bilateral_backward.default, (torch.randn_like(x), x, 5, 0.1, 2.0))
    compiled = torch.compile(lambda t: bilateral(t, 3, 0.1, 2.0) + 1, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), bilateral(x, 3, 0.1, 2.0) + 1)


@pytest.mark.parametrize(
    ("x", "window", "sigma_color", "sigma_space", "error", "match"),
    [
        (torch.full((1, 3, 4, 4), float("nan")), 3, 0.1, 1.0, ValueError, "finite"),
        (torch.full((1, 3, 4, 4), 2.0), 3, 0.1, 1.0, ValueError, r"\[0, 1\]"),
        (torch.full((1, 3, 4, 4), -1.0), 3, 0.1, 1.0, ValueError, r"\[0, 1\]"),
        (torch.rand(3, 4, 4), 3, 0.1, 1.0, ValueError, r"\(B, C, H, W\)"),
        (torch.ones(1, 3, 4, 4, dtype=torch.uint8), 3, 0.1, 1.0, TypeError, "floating-point"),
        (torch.rand(1, 3, 4, 4), 4, 0.1, 1.0, ValueError, "window must be odd"),
        (torch.rand(1, 3, 4, 4), 0, 0.1, 1.0, ValueError, "window must be an integer >= 1"),
        (torch.rand(1, 3, 4, 4), -3, 0.1, 1.0, ValueError, "window"),
        (torch.rand(1, 3, 4, 4), 3.0, 0.1, 1.0, ValueError, "window"),
        (torch.rand(1, 3, 4, 4), 3, 0.0, 1.0, ValueError, "sigma_color must be a finite number > 0"),
        (torch.rand(1, 3, 4, 4), 3, 0.1, -2.0, ValueError, "sigma_space"),
    ],
)
def test_invalid_inputs_raise(x, window, sigma_color, sigma_space, error, match):
    with pytest.raises(error, match=match):
        bilateral(x, window, sigma_color, sigma_space)
