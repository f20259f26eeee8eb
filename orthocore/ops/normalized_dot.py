"""``normalized_dot``: the per-sample cosine δ of Eq. 1 between two batches of tensors.

For ``a, b`` of shape :math:`(B, *)`, flattened to :math:`(B, D)`,

    δ_i = <a_i, b_i> / (‖a_i‖ ‖b_i‖),   and δ_i = 0 when a_i or b_i is all zeros.

The fused kernels make one pass over ``a`` and ``b`` forward (``a·b``, ``‖a‖²``,
``‖b‖²`` together, no normalised copies) and save the three sums per row; backward is
one pass that writes only the gradients asked for (the reference-model gradient is
usually a constant). Sums accumulate in float32 (float64 for float64 inputs).

The op recipe (see :mod:`orthocore.ops._autograd`): two custom ops, ``normalized_dot``
(returns δ and the row statistics) and ``normalized_dot_backward``, each with a fake
implementation and a registered derivative; the backward's derivative (the double
backward) differentiates the reference formula.
"""

from __future__ import annotations

import torch
from torch import Tensor

from orthocore.checks import check_same, check_shape, check_tensor
from orthocore.dispatch import Draw, OpBackends, Sample
from orthocore.formulas import accumulate_dtype
from orthocore.formulas.normalized_dot import backward_coefficients, delta_from_stats
from orthocore.ops._autograd import differentiable, runs_eagerly

_OP = "normalized_dot"


def _flat(x: Tensor) -> Tensor:
    return (x.flatten(1) if x.dim() > 1 else x.unsqueeze(1)).contiguous()  # (B, D)


# --------------------------------------------------------------------------- reference
def row_stats(a: Tensor, b: Tensor) -> Tensor:
    """Per-row ``[a·b, ‖a‖², ‖b‖²]`` of two :math:`(B, D)` tensors, differentiably.

    Returns:
        :math:`(B, 3)` in the accumulation dtype.
    """
    acc = accumulate_dtype(a.dtype)
    af, bf = a.to(acc), b.to(acc)
    return torch.stack(((af * bf).sum(1), (af * af).sum(1), (bf * bf).sum(1)), dim=1)  # (B, 3)


def _reference_forward(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    stats = row_stats(a, b)
    return delta_from_stats(stats, a.dtype), stats


def _reference_backward(
    grad_delta: Tensor, a: Tensor, b: Tensor, stats: Tensor | None, need_a: bool, need_b: bool
) -> tuple[Tensor | None, Tensor | None]:
    """Closed-form backward in plain torch. It recomputes the statistics from ``a`` and
    ``b`` (``stats`` may be ``None``) so that it is itself differentiable: the op's
    double backward runs through it."""
    coef = backward_coefficients(grad_delta, row_stats(a, b))  # (B, 4)
    acc = coef.dtype
    af, bf = a.to(acc), b.to(acc)
    grad_a = (coef[:, 0:1] * bf + coef[:, 1:2] * af).to(a.dtype) if need_a else None
    grad_b = (coef[:, 2:3] * af + coef[:, 3:4] * bf).to(b.dtype) if need_b else None
    return grad_a, grad_b


def normalized_dot_reference(a: Tensor, b: Tensor) -> Tensor:
    """Plain-PyTorch δ, differentiable by autograd; the oracle of the fused op.

    Args:
        a: :math:`(B, *)`.
        b: :math:`(B, *)`, same shape, dtype and device as ``a``.

    Returns:
        :math:`(B,)` in the dtype of ``a``.
    """
    return _reference_forward(_flat(a), _flat(b))[0]


# ---------------------------------------------------------------------- compiled backends
def _compiled_forward(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    return torch.ops.orthocore.normalized_dot_fwd(a, b)


def _compiled_backward(grad_delta, a, b, stats, need_a, need_b):
    grad_a, grad_b = torch.ops.orthocore.normalized_dot_bwd(grad_delta, a, b, stats, need_a, need_b)
    return (grad_a if need_a else None), (grad_b if need_b else None)


def _triton_forward(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    from orthocore.kernels import normalized_dot as kernels

    return kernels.forward(a, b)


def _triton_backward(grad_delta, a, b, stats, need_a, need_b):
    from orthocore.kernels import normalized_dot as kernels

    return kernels.backward(grad_delta, a, b, stats, need_a, need_b)


def _sample(device: torch.device, draw: Draw) -> Sample:
    a, b = draw(64, 3 * 32 * 32), draw(64, 3 * 32 * 32)

    def forward_and_backward() -> tuple[Tensor, ...]:
        leaf = a.clone().requires_grad_()
        delta = normalized_dot(leaf, b)
        return (delta, *torch.autograd.grad(delta.sum(), leaf))

    return Sample("normalized_dot fwd+bwd, 64 x 3x32x32", forward_and_backward, 1e-4)


FORWARD = OpBackends(
    _OP, {"reference": _reference_forward, "cpu": _compiled_forward, "cuda": _compiled_forward, "triton": _triton_forward},
    sample=_sample,
)
# Its backward's kernels, checked through the forward's sample (which takes a gradient).
BACKWARD = OpBackends(
    f"{_OP}_backward",
    {"reference": _reference_backward, "cpu": _compiled_backward, "cuda": _compiled_backward, "triton": _triton_backward},
)


# ------------------------------------------------------------------------- custom ops
def _check_inputs(a: Tensor, b: Tensor) -> None:
    check_tensor(a, "a", floating=True, where=_OP)
    check_tensor(b, "b", floating=True, where=_OP)
    check_same(a, b, ("a", "b"), where=_OP)
    check_shape(a, "a", ["B", "*"], where=_OP)


def _forward(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """``(delta, stats)``: δ :math:`(B,)` and the row statistics :math:`(B, 3)` the backward reuses."""
    return FORWARD(a.device)(_flat(a), _flat(b))


@torch.library.custom_op("orthocore::normalized_dot", mutates_args=())
def _normalized_dot_op(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`_forward` as an op, checking its inputs (it may be called directly)."""
    _check_inputs(a, b)
    return _forward(a, b)


@_normalized_dot_op.register_fake
def _(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    _check_inputs(a, b)
    rows = a.shape[0]
    return a.new_empty((rows,)), a.new_empty((rows, 3), dtype=accumulate_dtype(a.dtype))


def _backward(
    grad_delta: Tensor, a: Tensor, b: Tensor, stats: Tensor, need_a: bool, need_b: bool
) -> tuple[Tensor, Tensor]:
    """``(grad_a, grad_b)`` shaped like ``a`` and ``b``; an empty tensor for one not asked for."""
    impl = BACKWARD(a.device)
    grad_a, grad_b = impl(grad_delta.contiguous(), _flat(a), _flat(b), stats.contiguous(), need_a, need_b)
    empty = a.new_empty((0,))
    return (grad_a.view(a.shape) if need_a else empty), (grad_b.view(b.shape) if need_b else empty.clone())


_normalized_dot_backward_op = torch.library.custom_op("orthocore::normalized_dot_backward", _backward,
                                                      mutates_args=())  # fmt: skip


@_normalized_dot_backward_op.register_fake
def _(grad_delta, a, b, stats, need_a, need_b):
    return (torch.empty_like(a) if need_a else a.new_empty((0,))), (torch.empty_like(b) if need_b else b.new_empty((0,)))


# --------------------------------------------------------------------------- autograd
def _forward_setup_context(ctx, inputs, output) -> None:
    a, b = inputs
    _, stats = output
    ctx.mark_non_differentiable(stats)
    ctx.save_for_backward(a, b, stats)


def _forward_backward(ctx, grad_delta: Tensor, _grad_stats) -> tuple[Tensor | None, Tensor | None]:
    """The fused backward. When a graph of it is built (double backprop) it runs in its
    differentiable form, whose own derivative is :func:`_backward_backward`; otherwise the
    op is called as it is (which is also what ``torch.compile`` traces)."""
    a, b, stats = ctx.saved_tensors
    need_a, need_b = ctx.needs_input_grad
    if torch.is_grad_enabled():
        backward = _differentiable_backward
    else:  # the op as it is: its implementation itself where nothing traces it
        backward = _backward if runs_eagerly(grad_delta, a, b, stats) else _normalized_dot_backward_op
    grad_a, grad_b = backward(grad_delta, a, b, stats, need_a, need_b)
    return (grad_a if need_a else None), (grad_b if need_b else None)


def _backward_setup_context(ctx, inputs, output) -> None:
    grad_delta, a, b, _, need_a, need_b = inputs
    ctx.save_for_backward(grad_delta, a, b)
    ctx.need = (need_a, need_b)


def _backward_backward(ctx, grad_grad_a: Tensor, grad_grad_b: Tensor):
    """The double backward: the vector-Jacobian product of the reference backward formula,
    which recomputes the statistics from ``a`` and ``b`` (so it depends on them too)."""
    grad_delta, a, b = ctx.saved_tensors
    need_a, need_b = ctx.need

    def needed_gradients(g: Tensor, x: Tensor, y: Tensor) -> tuple[Tensor, ...]:
        grads = _reference_backward(g, _flat(x), _flat(y), None, need_a, need_b)
        return tuple(t.view(x.shape) for t in grads if t is not None)

    outputs, vjp = torch.func.vjp(needed_gradients, grad_delta, a, b)
    cotangents = [c for c, need in zip((grad_grad_a, grad_grad_b), (need_a, need_b)) if need]
    grads = vjp(tuple(torch.zeros_like(o) if c is None else c for o, c in zip(outputs, cotangents)))
    return (*grads, None, None, None)


_differentiable_backward = differentiable(
    "normalized_dot_backward", _normalized_dot_backward_op, _backward_backward, _backward_setup_context, eager=_backward
)
_differentiable_forward = differentiable(
    "normalized_dot", _normalized_dot_op, _forward_backward, _forward_setup_context, eager=_forward
)


def normalized_dot(a: Tensor, b: Tensor) -> Tensor:
    """Per-sample cosine similarity of two batches, flattened from dim 1 (Eq. 1's δ).

    Rows where ``a`` or ``b`` is all zeros give δ = 0 and zero gradient, never NaN.
    Differentiable in both inputs (and twice, through the reference formula).

    Args:
        a: :math:`(B, *)` floating tensor (float64, float32, float16 or bfloat16).
        b: :math:`(B, *)` of the same shape, dtype and device.

    Returns:
        δ of shape :math:`(B,)` in the dtype of ``a``, values in ``[-1, 1]``.

    Examples:
        >>> import torch
        >>> from orthocore.ops import normalized_dot
        >>> delta = normalized_dot(torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.tensor([[0.0, 2.0], [3.0, 3.0]]))
        >>> [round(value, 4) for value in delta.tolist()]
        [0.0, 1.0]
    """
    _check_inputs(a, b)
    return _differentiable_forward(a, b)[0]
