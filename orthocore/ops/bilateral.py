"""``bilateral``: OpenCV's edge-preserving bilateral filter on a batch of images.

For output pixel ``i`` and every offset ``t = (dy, dx)`` of the circular window
``dy² + dx² ≤ r²`` (``r = window // 2``; OpenCV's ``d = window``),

    w_t(i) = exp(−(dy² + dx²) / (2 σ_s²)) · exp(−D_t(i)² / (2 σ_c²)),
    D_t(i) = Σ_c |x[c, i + t] − x[c, i]|        (L1 distance summed over channels),
    out[c, i] = Σ_t w_t(i) x[c, i + t] / Σ_t w_t(i),

with borders reflected without repeating the edge (OpenCV's ``BORDER_REFLECT_101``,
its default). These are the weights of ``cv2.bilateralFilter`` on 8-bit images, whose
colour table ``exp(−k²/(2σ²))`` is indexed by the integer L1 distance ``k`` summed over
the (1 or 3) channels: on [0, 1] images ``sigma_color = σ/255`` gives the same weights,
and the result differs from OpenCV's only by OpenCV's final rounding to 8 bits. Any
number of channels is accepted; they always share one colour weight.

Differences from OpenCV, by choice: ``window = 1`` is the identity (OpenCV widens
``d = 1`` to a 3×3 window); sigmas must be > 0 (OpenCV silently replaces non-positive
ones by 1); a window is required (OpenCV derives one from ``sigma_space`` when ``d ≤ 0``).

Memory: the window is walked tap by tap, never stored as ``k²`` shifted copies (kornia's
``bilateral_blur`` unfolds them); the CPU kernel reflects the borders into a few rows of
per-thread scratch, the Triton kernel reads a reflect-padded copy of the input.

Differentiable in ``x``, through the colour weights too: the CPU backward kernel
recomputes each pixel's weights and scatters the gradient into a reflect-padded buffer
folded back onto the image; other devices take the vector-Jacobian product of the
reference. A backward that is itself differentiated (double backprop) runs the reference's.
This is the gradient a white-box attacker takes through the filter (BPDA with the filter as
its own approximation, :mod:`orthocore.defenses.bpda`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from orthocore.checks import check_images, check_number
from orthocore.dispatch import Draw, OpBackends, Sample
from orthocore.formulas import accumulate_dtype
from orthocore.ops._autograd import differentiable, runs_eagerly

_OP = "bilateral"


# ----------------------------------------------------------------------- shared helpers
def reflect_101_indices(size: int, radius: int, device: torch.device | str = "cpu") -> Tensor:
    """Source index of each position ``-radius .. size + radius - 1`` under OpenCV's
    ``BORDER_REFLECT_101`` (``gfedcb|abcdefgh|gfedcba``), repeating the reflection for
    radii beyond the image.

    Returns:
        :math:`(size + 2·radius,)` int64 indices into ``0 .. size - 1``.
    """
    positions = torch.arange(-radius, size + radius, device=device)
    if size == 1:
        return torch.zeros_like(positions)
    period = 2 * (size - 1)
    folded = positions.remainder(period)
    return torch.where(folded >= size, period - folded, folded)


def pad_reflect_101(x: Tensor, radius: int) -> Tensor:
    """:math:`(B, C, H, W)` → :math:`(B, C, H + 2r, W + 2r)` with reflected borders."""
    if radius == 0:
        return x.contiguous()
    if radius < min(x.shape[2], x.shape[3]):
        return F.pad(x, (radius, radius, radius, radius), mode="reflect")  # the same, faster
    rows = reflect_101_indices(x.shape[2], radius, x.device)
    cols = reflect_101_indices(x.shape[3], radius, x.device)
    return x.index_select(2, rows).index_select(3, cols)


def window_taps(radius: int, sigma_space: float) -> list[tuple[int, int, float]]:
    """OpenCV's circular window: ``(dy, dx, spatial weight)`` for ``dy² + dx² ≤ radius²``,
    row by row, weights rounded to float32 as OpenCV stores them."""
    coeff = -0.5 / (sigma_space * sigma_space)
    taps = []
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy * dy + dx * dx <= radius * radius:
                weight = float(torch.tensor(math.exp((dy * dy + dx * dx) * coeff), dtype=torch.float32))
                taps.append((dy, dx, weight))
    return taps


# --------------------------------------------------------------------------- reference
def bilateral_reference(x: Tensor, radius: int, sigma_color: float, sigma_space: float) -> Tensor:
    """Plain-PyTorch filter, tap by tap over a reflect-101 padded copy; the kernels' oracle.

    Args:
        x: :math:`(B, C, H, W)` floating tensor.
        radius: window radius ``r >= 0`` (``window = 2r + 1``).
        sigma_color: colour sigma (> 0) in the units of the values.
        sigma_space: spatial sigma (> 0) in pixels.

    Returns:
        :math:`(B, C, H, W)` in the dtype of ``x``.
    """
    height, width = x.shape[2], x.shape[3]
    source = pad_reflect_101(x, radius).to(accumulate_dtype(x.dtype))
    centre = source[..., radius : radius + height, radius : radius + width]  # (B, C, H, W)
    color_coeff = -0.5 / (sigma_color * sigma_color)
    sums = torch.zeros_like(centre)
    total = torch.zeros_like(centre[:, :1])  # (B, 1, H, W)
    for dy, dx, tap_weight in window_taps(radius, sigma_space):
        neighbour = source[..., radius + dy : radius + dy + height, radius + dx : radius + dx + width]
        distance = (neighbour - centre).abs().sum(1, keepdim=True)  # (B, 1, H, W)
        weight = tap_weight * torch.exp(color_coeff * distance * distance)
        total += weight
        sums += weight * neighbour
    return (sums / total).to(x.dtype)


def bilateral_backward_reference(grad: Tensor, x: Tensor, radius: int, sigma_color: float,
                                 sigma_space: float) -> Tensor:  # fmt: skip
    """The vector-Jacobian product of :func:`bilateral_reference` at ``x``, by autograd;
    the backward kernels' oracle, and itself differentiable (``torch.func.vjp``).

    Args:
        grad: :math:`(B, C, H, W)` upstream gradient.
        x, radius, sigma_color, sigma_space: as for :func:`bilateral_reference`.

    Returns:
        :math:`(B, C, H, W)` gradient with respect to ``x``.
    """
    _, vjp = torch.func.vjp(lambda t: bilateral_reference(t, radius, sigma_color, sigma_space), x)
    return vjp(grad)[0]


# ---------------------------------------------------------------------- compiled backends
def _compiled(x: Tensor, radius: int, sigma_color: float, sigma_space: float) -> Tensor:
    return torch.ops.orthocore.bilateral_fwd(x, radius, sigma_color, sigma_space)


def _compiled_backward(grad: Tensor, x: Tensor, radius: int, sigma_color: float, sigma_space: float) -> Tensor:
    return torch.ops.orthocore.bilateral_bwd(grad, x, radius, sigma_color, sigma_space)


def _triton(x: Tensor, radius: int, sigma_color: float, sigma_space: float) -> Tensor:
    from orthocore.kernels import bilateral as kernels

    return kernels.bilateral(pad_reflect_101(x, radius), radius, sigma_color, sigma_space)


# No CUDA C++ kernel: the Triton kernel already is the whole computation (one program
# per row tile, taps walked in registers, neighbours read through the cache); a CUDA
# version would run the same loads and the same arithmetic.
def _sample(device: torch.device, draw: Draw) -> Sample:
    images, upstream = draw(8, 3, 32, 32, rand=torch.rand), draw(8, 3, 32, 32)

    def forward_and_backward() -> tuple[Tensor, ...]:
        leaf = images.clone().requires_grad_()
        filtered = bilateral(leaf, 5, 0.1, 2.0)
        return (filtered, *torch.autograd.grad(filtered, leaf, upstream))

    return Sample("bilateral window 5 fwd+bwd, 8 x 3x32x32", forward_and_backward, 1e-4)


FORWARD = OpBackends(_OP, {"reference": bilateral_reference, "cpu": _compiled, "triton": _triton}, sample=_sample)
# Its backward's kernels, checked through the forward's sample (which takes a gradient).
# No GPU kernel: there the reference's vector-Jacobian product runs.
BACKWARD = OpBackends(f"{_OP}_backward", {"reference": bilateral_backward_reference, "cpu": _compiled_backward})


# ------------------------------------------------------------------------- custom op
def check_bilateral_settings(window: int, sigma_color: float, sigma_space: float) -> None:
    """Raises ``ValueError`` unless ``window`` is an odd integer >= 1 and both sigmas are > 0."""
    check_number(window, "window", low=1, odd=True, where=_OP)  # OpenCV's diameter d = 2r + 1
    check_number(sigma_color, "sigma_color", low=0, low_open=True, where=_OP)
    check_number(sigma_space, "sigma_space", low=0, low_open=True, where=_OP)


def _check_arguments(x: Tensor, window: int, sigma_color: float, sigma_space: float) -> None:
    check_images(x, "x", values=False, where=_OP)
    check_bilateral_settings(window, sigma_color, sigma_space)


def _forward(x: Tensor, window: int, sigma_color: float, sigma_space: float) -> Tensor:
    if x.numel() == 0:
        return torch.empty_like(x, memory_format=torch.contiguous_format)
    return FORWARD(x.device)(x.contiguous(), window // 2, sigma_color, sigma_space)


@torch.library.custom_op("orthocore::bilateral", mutates_args=())
def _bilateral_op(x: Tensor, window: int, sigma_color: float, sigma_space: float) -> Tensor:
    """:func:`_forward` as an op, checking its inputs (it may be called directly)."""
    _check_arguments(x, window, sigma_color, sigma_space)
    return _forward(x, window, sigma_color, sigma_space)


@_bilateral_op.register_fake
def _(x: Tensor, window: int, sigma_color: float, sigma_space: float) -> Tensor:
    _check_arguments(x, window, sigma_color, sigma_space)
    return torch.empty_like(x, memory_format=torch.contiguous_format)


def _backward(grad: Tensor, x: Tensor, window: int, sigma_color: float, sigma_space: float) -> Tensor:
    """The gradient with respect to ``x``, shaped like it."""
    if x.numel() == 0:
        return torch.zeros_like(x, memory_format=torch.contiguous_format)
    return BACKWARD(x.device)(grad.contiguous(), x.contiguous(), window // 2, sigma_color, sigma_space)


_bilateral_backward_op = torch.library.custom_op("orthocore::bilateral_backward", _backward, mutates_args=())


@_bilateral_backward_op.register_fake
def _(grad: Tensor, x: Tensor, window: int, sigma_color: float, sigma_space: float) -> Tensor:
    return torch.empty_like(x, memory_format=torch.contiguous_format)


# --------------------------------------------------------------------------- autograd
def _setup_context(ctx, inputs, output) -> None:
    x, window, sigma_color, sigma_space = inputs
    ctx.save_for_backward(x)
    ctx.settings = (window, sigma_color, sigma_space)


def _backward_formula(ctx, grad: Tensor) -> tuple[Tensor, None, None, None]:
    """The fused backward; when a graph of it is built (double backprop), the reference's
    vector-Jacobian product, which autograd differentiates."""
    (x,) = ctx.saved_tensors
    window, sigma_color, sigma_space = ctx.settings
    if torch.is_grad_enabled():
        grad_x = bilateral_backward_reference(grad, x, window // 2, sigma_color, sigma_space)
    else:  # the op as it is: its implementation itself where nothing traces it
        backward = _backward if runs_eagerly(grad, x) else _bilateral_backward_op
        grad_x = backward(grad, x, window, sigma_color, sigma_space)
    return grad_x, None, None, None


_differentiable = differentiable(_OP, _bilateral_op, _backward_formula, _setup_context, eager=_forward)


def bilateral(x: Tensor, window: int, sigma_color: float, sigma_space: float) -> Tensor:
    """Bilateral filter with OpenCV's weights and reflected borders.

    Equals ``cv2.bilateralFilter(img8, window, 255 * sigma_color, sigma_space) / 255`` on
    8-bit-valued images (1 or 3 channels) up to OpenCV's rounding to 8 bits.

    Args:
        x: :math:`(B, C, H, W)` floating tensor, range [0, 1].
        window: odd diameter ``>= 1`` of the circular window (OpenCV's ``d``).
        sigma_color: colour sigma > 0 on the [0, 1] scale, applied to the L1 distance
            summed over channels.
        sigma_space: spatial sigma > 0 in pixels.

    Returns:
        :math:`(B, C, H, W)` filtered batch in the dtype of ``x``, differentiable in ``x``.

    Examples:
        >>> import torch
        >>> from orthocore.ops import bilateral
        >>> x = torch.zeros(1, 1, 5, 5); x[..., 2:] = 1.0  # a hard edge survives
        >>> y = bilateral(x, window=5, sigma_color=0.1, sigma_space=2.0)
        >>> float((y - x).abs().max()) < 1e-6
        True
    """
    _check_arguments(x, window, sigma_color, sigma_space)
    check_images(x, "x", where=_OP)
    return _differentiable(x, int(window), float(sigma_color), float(sigma_space))
