"""``bit_depth``: bit-depth reduction (feature squeezing, Xu et al. 2018), exactly.

    bit_depth(x, b) = rint(x · (2^b − 1)) / (2^b − 1)

with ``rint`` rounding half to even (numpy's ``rint``; kornia's ``posterize`` truncates
instead). Computed in float64 and cast back to the input dtype, as numpy computes ART's
``FeatureSqueezing`` (its float64 ``clip_values`` promote the array), so the result is
ART's cast to the input dtype, and every backend returns the same values. Not
differentiable: the output never requires grad.
"""

from __future__ import annotations

import torch
from torch import Tensor

from orthocore.checks import check_images, check_number
from orthocore.dispatch import Draw, OpBackends, Sample
from orthocore.ops._exact import divide_exactly

_OP = "bit_depth"


def _reference_reduce(x: Tensor, bits: int) -> Tensor:
    levels = float((1 << bits) - 1)
    return divide_exactly(torch.round(x.double() * levels), levels).to(x.dtype)


def bit_depth_reference(x: Tensor, bits: int) -> Tensor:
    """Plain-PyTorch bit-depth reduction; the oracle of :func:`bit_depth`.

    Args:
        x: :math:`(B, C, H, W)` images in [0, 1].
        bits: bits per channel kept, 1..8.

    Returns:
        :math:`(B, C, H, W)` in the dtype of ``x``.
    """
    _check_arguments(x, bits)
    check_images(x, "x", where=_OP)
    return _reference_reduce(x, bits)


def _compiled_reduce(x: Tensor, bits: int) -> Tensor:
    return torch.ops.orthocore.bit_depth_reduce(x, bits)


def _triton_reduce(x: Tensor, bits: int) -> Tensor:
    from orthocore.kernels import bit_depth as kernels

    return kernels.reduce(x, bits)


def _sample(device: torch.device, draw: Draw) -> Sample:
    images = draw(8, 3, 32, 32, rand=torch.rand)
    return Sample("bit_depth 3 bits, 8 x 3x32x32", lambda: (bit_depth(images, 3),), 0.0)


REDUCE = OpBackends(_OP, {"reference": _reference_reduce, "cpu": _compiled_reduce, "triton": _triton_reduce},
                    gpu_order=("triton",), sample=_sample)  # fmt: skip


def _check_arguments(x: Tensor, bits: int) -> None:
    check_images(x, "x", values=False, where=_OP)
    check_number(bits, "bits", low=1, high=8, integer=True, where=_OP)


@torch.library.custom_op("orthocore::bit_depth", mutates_args=())
def _bit_depth_op(x: Tensor, bits: int) -> Tensor:
    _check_arguments(x, bits)
    check_images(x, "x", where=_OP)
    if x.numel() == 0:
        return torch.empty_like(x)
    return REDUCE(x.device)(x.contiguous(), bits)


@_bit_depth_op.register_fake
def _(x: Tensor, bits: int) -> Tensor:
    _check_arguments(x, bits)
    return torch.empty_like(x, memory_format=torch.contiguous_format)


def bit_depth(x: Tensor, bits: int) -> Tensor:
    """Reduces images to ``bits`` bits per channel: ``rint(x·(2^b−1)) / (2^b−1)``.

    Args:
        x: :math:`(B, C, H, W)` floating images in [0, 1].
        bits: bits per channel kept, 1..8 (the paper's settings are 1..4).

    Returns:
        :math:`(B, C, H, W)` in the dtype of ``x``, values ``k / (2^b − 1)``.

    Raises:
        ValueError: wrong rank, NaN or values outside [0, 1], bits outside 1..8.

    Examples:
        >>> import torch
        >>> from orthocore.ops import bit_depth
        >>> bit_depth(torch.tensor([0.0, 0.2, 0.5, 0.9]).view(1, 1, 1, 4), bits=1)
        tensor([[[[0., 0., 0., 1.]]]])
    """
    _check_arguments(x, bits)
    return _bit_depth_op(x.detach(), bits)
