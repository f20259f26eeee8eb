"""``normalized_dot``: the per-sample cosine δ of Eq. 1 between two batches of tensors.

For ``a, b`` of shape :math:`(B, *)`, flattened to :math:`(B, D)`,

    δ_i = <a_i, b_i> / (‖a_i‖ ‖b_i‖),   and δ_i = 0 when a_i or b_i is all zeros.

The fused kernels make one pass over ``a`` and ``b`` forward (``a·b``, ``‖a‖²``,
``‖b‖²`` together, no normalised copies) and save the three sums per row; backward is
one pass that writes only the gradients asked for (the reference-model gradient is
usually a constant). Sums accumulate in float32 (float64 for float64 inputs).
"""

from __future__ import annotations


import torch
from torch import Tensor

from orthocore.dispatch import OpBackends
from orthocore.formulas import accumulate_dtype
from orthocore.formulas.normalized_dot import backward_coefficients, delta_from_stats
from orthocore.checks import check_same, check_shape, check_tensor

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


FORWARD = OpBackends(
    _OP, {"reference": _reference_forward, "cpu": _compiled_forward, "cuda": _compiled_forward, "triton": _triton_forward}
)
BACKWARD = OpBackends(
    _OP,
    {"reference": _reference_backward, "cpu": _compiled_backward, "cuda": _compiled_backward, "triton": _triton_backward},
)


# ------------------------------------------------------------------------- custom ops
def _check_inputs(a: Tensor, b: Tensor) -> None:
    check_tensor(a, "a", floating=True, where=_OP)
    check_tensor(b, "b", floating=True, where=_OP)
    check_same(a, b, ("a", "b"), where=_OP)
    check_shape(a, "a", ["B", "*"], where=_OP)




def _forward(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    return FORWARD(a.device)(_flat(a), _flat(b))


def _backward_kernels(grad_delta, a, b, stats, need_a, need_b) -> tuple[Tensor | None, Tensor | None]:
    impl = BACKWARD(a.device)
    grad_a, grad_b = impl(grad_delta.contiguous(), _flat(a), _flat(b), stats.contiguous(), need_a, need_b)
    return (grad_a.view(a.shape) if need_a else None), (grad_b.view(b.shape) if need_b else None)


def _plain_eager(*tensors: Tensor) -> bool:
    """True for ordinary tensors outside any tracing: then the kernels are called
    directly, skipping the custom op's Python dispatch (tens of µs per call, which is most
    of the time of a small batch). Compilation, fake tensors and tensor subclasses go
    through the custom op and its fake implementation."""
    return (
        not torch.compiler.is_compiling()
        and torch.utils._python_dispatch._get_current_dispatch_mode() is None
        and all(type(t) is Tensor for t in tensors)
    )


@torch.library.custom_op("orthocore::normalized_dot", mutates_args=())
def _normalized_dot_op(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    _check_inputs(a, b)
    return _forward(a, b)


@_normalized_dot_op.register_fake
def _(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    _check_inputs(a, b)
    rows = a.shape[0]
    return a.new_empty((rows,)), a.new_empty((rows, 3), dtype=accumulate_dtype(a.dtype))


@torch.library.custom_op("orthocore::normalized_dot_backward", mutates_args=())
def _normalized_dot_backward_op(
    grad_delta: Tensor, a: Tensor, b: Tensor, stats: Tensor, need_a: bool, need_b: bool
) -> tuple[Tensor, Tensor]:
    grad_a, grad_b = _backward_kernels(grad_delta, a, b, stats, need_a, need_b)
    empty = a.new_empty((0,))
    return (grad_a if grad_a is not None else empty), (grad_b if grad_b is not None else empty.clone())


@_normalized_dot_backward_op.register_fake
def _(grad_delta, a, b, stats, need_a, need_b):
    return (torch.empty_like(a) if need_a else a.new_empty((0,))), (torch.empty_like(b) if need_b else b.new_empty((0,)))


def _shaped_reference_backward(grad_delta, a, b, need_a, need_b):
    grad_a, grad_b = _reference_backward(grad_delta, _flat(a), _flat(b), None, need_a, need_b)
    return (grad_a.view(a.shape) if need_a else None), (grad_b.view(b.shape) if need_b else None)


class _NormalizedDotBackward(torch.autograd.Function):
    """The fused backward pass, itself differentiable: its own backward (the op's double
    backward) differentiates the reference formula, which recomputes the statistics."""

    @staticmethod
    def forward(grad_delta, a, b, stats, need_a, need_b):
        if _plain_eager(grad_delta, a, b, stats):
            return _backward_kernels(grad_delta, a, b, stats, need_a, need_b)
        grad_a, grad_b = _normalized_dot_backward_op(grad_delta, a, b, stats, need_a, need_b)
        return (grad_a if need_a else None), (grad_b if need_b else None)

    @staticmethod
    def setup_context(ctx, inputs, output):
        grad_delta, a, b, _, need_a, need_b = inputs
        ctx.save_for_backward(grad_delta, a, b)
        ctx.need = (need_a, need_b)

    @staticmethod
    def backward(ctx, grad_grad_a, grad_grad_b):
        grad_delta, a, b = ctx.saved_tensors
        need_a, need_b = ctx.need

        def needed_gradients(g, x, y):
            return tuple(t for t in _shaped_reference_backward(g, x, y, need_a, need_b) if t is not None)

        outputs, vjp = torch.func.vjp(needed_gradients, grad_delta, a, b)
        cotangents = [c for c, need in zip((grad_grad_a, grad_grad_b), (need_a, need_b)) if need]
        grads = vjp(tuple(torch.zeros_like(o) if c is None else c for o, c in zip(outputs, cotangents)))
        return (*grads, None, None, None)


class _NormalizedDot(torch.autograd.Function):
    """Autograd of the op in the form torch.func transforms accept (forward without
    ctx + setup_context): the trainer takes gradients through it inside torch.func.grad."""

    @staticmethod
    def forward(a, b):
        return _forward(a, b) if _plain_eager(a, b) else _normalized_dot_op(a, b)

    @staticmethod
    def setup_context(ctx, inputs, output):
        a, b = inputs
        _, stats = output
        ctx.mark_non_differentiable(stats)
        ctx.save_for_backward(a, b, stats)

    @staticmethod
    def backward(ctx, grad_delta, _grad_stats):
        a, b, stats = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        if torch.is_grad_enabled():  # a graph of the backward is wanted: keep it differentiable
            return _NormalizedDotBackward.apply(grad_delta, a, b, stats, need_a, need_b)
        return _NormalizedDotBackward.forward(grad_delta, a, b, stats, need_a, need_b)


# Direct callers of torch.ops.orthocore.normalized_dot get the same autograd.
torch.library.register_autograd(
    "orthocore::normalized_dot",
    lambda ctx, grad_delta, grad_stats: _NormalizedDot.backward(ctx, grad_delta, grad_stats),
    setup_context=_NormalizedDot.setup_context,
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
    return _NormalizedDot.apply(a, b)[0]
