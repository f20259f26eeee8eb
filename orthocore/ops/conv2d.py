"""2-D convolution whose double backward takes its weight term from the weight-gradient kernel.

Orthogonal training differentiates an input gradient (double backprop). Through a
convolution ``y = conv(x, W)`` the first backward gives ``gx = conv_transpose(gy, W)``
(and ``gW``, ``gb``), and the second derivative takes upstream gradients ``ggx, ggW,
ggb`` of those and returns, for ``gy``, ``x`` and ``W``:

    ggy = conv(ggx, W) + conv(x, ggW) + ggb        (broadcast over the batch and pixels)
    gx' = conv_transpose(gy, ggW)                   the input gradient of conv(·, ggW)
    gW' = Σ ggx ⋆ gy                                the weight gradient with input ggx

PyTorch's ``_convolution_double_backward`` computes ``gW'`` as a forward convolution of
transposed tensors (the batch as channels), which oneDNN runs several times slower than
its own weight-gradient kernel: at ResNet-20's first stage (batch 128, 16 channels,
32×32) 16 ms against 2 ms, and it first copies both tensors into the transposed layout.
:func:`conv2d_train` computes the same function with the same forward and first backward
(PyTorch's ``convolution`` and ``convolution_backward``) and routes the derivative of
that backward to :func:`conv2d_double_backward`, which takes ``gW'`` from
``convolution_backward``'s weight kernel. The results equal PyTorch's up to float
rounding (the weight term sums in another order). Third derivatives are not supported.

Two custom ops, each with a fake implementation, follow the op recipe of
:mod:`orthocore.ops._autograd`: ``conv2d`` (derivative: ``conv2d_backward``, PyTorch's own
first backward) and ``conv2d_backward`` (derivative: :func:`conv2d_double_backward`).
There is no kernel of orthocore's own here, so no backend choice either: every device
runs PyTorch's kernels. :class:`orthocore.models.Conv2d` uses it in train mode on the CPU,
where it was measured (``docs/ops.md``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from orthocore.checks import check_number, check_number_list, check_shape, check_tensor
from orthocore.ops._autograd import differentiable

_CONVOLUTION_BACKWARD = torch.ops.aten.convolution_backward.default


def _first_backward(gy: Tensor, x: Tensor, weight: Tensor, stride, padding, dilation, groups: int,
                    mask: list[bool]) -> tuple[Tensor | None, Tensor | None, Tensor | None]:  # fmt: skip
    """PyTorch's backward of ``conv2d``: ``(gx, gW, gb)``, None where ``mask`` is False."""
    bias_sizes = [weight.shape[0]] if mask[2] else None
    gx, gw, gb = _CONVOLUTION_BACKWARD(gy, x, weight, bias_sizes, stride, padding, dilation, False, [0, 0], groups,
                                       mask)  # fmt: skip
    return (gx if mask[0] else None), (gw if mask[1] else None), (gb if mask[2] else None)


def conv2d_double_backward(
    ggx: Tensor | None, ggw: Tensor | None, ggb: Tensor | None, gy: Tensor, x: Tensor, weight: Tensor,
    stride: list[int], padding: list[int], dilation: list[int], groups: int, needs: tuple[bool, bool, bool],
) -> tuple[Tensor | None, Tensor | None, Tensor | None]:  # fmt: skip
    """The derivative of the first backward (the formulas of the module docstring).

    Args:
        ggx: :math:`(B, C_{in}, H, W)` upstream gradient of ``gx``, or None.
        ggw: :math:`(C_{out}, C_{in}/groups, k_h, k_w)` upstream gradient of ``gW``, or None.
        ggb: :math:`(C_{out},)` upstream gradient of ``gb``, or None.
        gy: :math:`(B, C_{out}, H', W')` the first backward's incoming gradient.
        x, weight: the convolution's input and weight.
        stride, padding, dilation, groups: the convolution's.
        needs: which of ``(ggy, gx', gW')`` to compute.

    Returns:
        ``(ggy, gx', gW')``, each None where not needed or where no upstream term reaches it.
    """
    ggy = gx = gw = None
    if needs[0]:
        terms = []
        if ggx is not None:
            terms.append(F.conv2d(ggx, weight, None, stride, padding, dilation, groups))
        if ggw is not None:
            terms.append(F.conv2d(x, ggw, None, stride, padding, dilation, groups))
        if ggb is not None:
            terms.append(ggb.view(1, -1, 1, 1).expand_as(gy))
        if terms:
            ggy = sum(terms[1:], terms[0])
    if needs[1] and ggw is not None:
        gx = _first_backward(gy, x, ggw, stride, padding, dilation, groups, [True, False, False])[0]
    if needs[2] and ggx is not None:
        gw = _first_backward(gy, ggx, weight, stride, padding, dilation, groups, [False, True, False])[1]
    return ggy, gx, gw


def _backward(gy: Tensor, x: Tensor, weight: Tensor, stride: list[int], padding: list[int], dilation: list[int],
              groups: int, mask: list[bool]) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """PyTorch's first backward of ``conv2d``; a result ``mask`` leaves out is an empty
    tensor (a custom op returns tensors only)."""
    results = _first_backward(gy, x, weight, stride, padding, dilation, groups, mask)
    return tuple(gy.new_empty(0) if r is None else r for r in results)  # type: ignore[return-value]


@torch.library.custom_op("orthocore::conv2d_backward", mutates_args=())
def _backward_op(gy: Tensor, x: Tensor, weight: Tensor, stride: list[int], padding: list[int], dilation: list[int],
                 groups: int, mask: list[bool]) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    return _backward(gy, x, weight, stride, padding, dilation, groups, mask)


@_backward_op.register_fake
def _(gy, x, weight, stride, padding, dilation, groups, mask):
    shapes = (x.shape, weight.shape, (weight.shape[0],))
    return tuple(gy.new_empty(shape if wanted else (0,)) for shape, wanted in zip(shapes, mask))


def _backward_setup_context(ctx, inputs, output) -> None:
    gy, x, weight, stride, padding, dilation, groups, _ = inputs
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(gy, x, weight)
    ctx.arguments = stride, padding, dilation, groups


def _double_backward(ctx, ggx: Tensor | None, ggw: Tensor | None, ggb: Tensor | None):
    """The derivative of the first backward (an empty result's upstream gradient is None)."""
    gy, x, weight = ctx.saved_tensors
    upstream = [None if g is None or g.numel() == 0 else g for g in (ggx, ggw, ggb)]
    ggy, gx, gw = conv2d_double_backward(*upstream, gy, x, weight, *ctx.arguments, ctx.needs_input_grad[:3])
    return ggy, gx, gw, None, None, None, None, None


_differentiable_backward = differentiable("conv2d_backward", _backward_op, _double_backward, _backward_setup_context,
                                          eager=_backward)  # fmt: skip


def _forward(x: Tensor, weight: Tensor, bias: Tensor | None, stride: list[int], padding: list[int],
             dilation: list[int], groups: int) -> Tensor:  # fmt: skip
    return F.conv2d(x, weight, bias, stride, padding, dilation, groups)


@torch.library.custom_op("orthocore::conv2d", mutates_args=())
def _conv2d_op(x: Tensor, weight: Tensor, bias: Tensor | None, stride: list[int], padding: list[int],
               dilation: list[int], groups: int) -> Tensor:  # fmt: skip
    """PyTorch's ``conv2d``."""
    return _forward(x, weight, bias, stride, padding, dilation, groups)


_conv2d_op.register_fake(_forward)  # fake tensors propagate shapes and strides through F.conv2d


def _setup_context(ctx, inputs, output) -> None:
    x, weight, bias, stride, padding, dilation, groups = inputs
    ctx.save_for_backward(x, weight)
    ctx.arguments = stride, padding, dilation, groups
    ctx.has_bias = bias is not None


def _conv2d_backward(ctx, gy: Tensor):
    """PyTorch's first backward; in its differentiable form (derivative:
    :func:`conv2d_double_backward`) when a graph of it is built (double backprop)."""
    x, weight = ctx.saved_tensors
    needs = ctx.needs_input_grad
    mask = [needs[0], needs[1], ctx.has_bias and needs[2]]
    if not any(mask):
        return None, None, None, None, None, None, None
    if torch.is_grad_enabled():
        results = _differentiable_backward(gy, x, weight, *ctx.arguments, mask)
        gx, gw, gb = (r if wanted else None for r, wanted in zip(results, mask))
    else:
        gx, gw, gb = _first_backward(gy, x, weight, *ctx.arguments, mask)
    return gx, gw, gb, None, None, None, None


_differentiable = differentiable("conv2d", _conv2d_op, _conv2d_backward, _setup_context, eager=_forward)


def _pair(value, name: str, low: int) -> list[int]:
    """``value`` (an int or a pair of ints ≥ ``low``) as a pair."""
    pair = check_number_list([value] * 2 if isinstance(value, int) else value, name, low=low, integer=True,
                             where="conv2d_train")  # fmt: skip
    if len(pair) != 2:
        raise ValueError(f"conv2d_train: {name} must be an int or a pair of ints; got {value!r}")
    return list(pair)


def conv2d_train(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int | tuple[int, int] = 1,
                 padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1, groups: int = 1) -> Tensor:  # fmt: skip
    """``F.conv2d`` (numeric padding), twice differentiable with the faster weight term.

    Args:
        x: :math:`(B, C_{in}, H, W)` floating tensor.
        weight: :math:`(C_{out}, C_{in}/groups, k_h, k_w)`.
        bias: :math:`(C_{out},)` or None.
        stride, padding, dilation: an int or a pair of ints, as ``F.conv2d``'s.
        groups: as ``F.conv2d``'s.

    Returns:
        :math:`(B, C_{out}, H', W')`, equal to ``F.conv2d``'s (same kernel); its first
        derivatives are PyTorch's, its second those of :func:`conv2d_double_backward`.

    Examples:
        >>> import torch
        >>> x, w = torch.ones(1, 1, 3, 3), torch.ones(1, 1, 3, 3)
        >>> conv2d_train(x, w, padding=1)[0, 0].tolist()
        [[4.0, 6.0, 4.0], [6.0, 9.0, 6.0], [4.0, 6.0, 4.0]]
    """
    for name, tensor in (("x", x), ("weight", weight)):
        check_tensor(tensor, name, floating=True, where="conv2d_train")
    check_shape(x, "x", ["B", "C", "H", "W"], where="conv2d_train")
    check_shape(weight, "weight", ["C_out", "C_in_per_group", "kh", "kw"], where="conv2d_train")
    check_number(groups, "groups", low=1, integer=True, where="conv2d_train")
    arguments = _pair(stride, "stride", 1), _pair(padding, "padding", 0), _pair(dilation, "dilation", 1)
    return _differentiable(x, weight, bias, *arguments, groups)
