"""Train-mode batch norm whose second derivative is one fused op.

Orthogonal training differentiates an input gradient (double backprop). Through a
train-mode BatchNorm that second derivative is, in PyTorch, ``batchnorm_double_backward``:
about thirty full-tensor operations, a quarter of an orthogonal ResNet-20 step on a CPU.
:func:`batch_norm_train` computes the same function with the same first derivative
(PyTorch's fused ``native_batch_norm`` and ``native_batch_norm_backward``) and routes
the derivative of that backward to ``orthocore::batch_norm_double_backward``: five sums
per channel in one pass, the two output tensors in a second.

Per channel, with ``n`` elements, batch mean μ, ``r = 1/sqrt(σ² + eps)``,
``x̂ = (x − μ)·r``, weight ``w``, and the first backward

    gx = w·r·(gy − mean(gy) − x̂·mean(gy·x̂)),   gw = Σ gy·x̂,   gb = Σ gy,

the double backward takes upstream gradients ``ggx, ggw, ggb`` of ``gx, gw, gb`` and
returns the gradients with respect to ``gy``, ``x`` (μ and r depend on x) and ``w``.
With the sums ``S_gy = Σ gy``, ``S_gyx = Σ gy·(x−μ)``, ``S_gg = Σ ggx``,
``S_ggx = Σ ggx·(x−μ)``, ``S_gygg = Σ gy·ggx``:

    ggy = w·r·ggx − w·r·S_gg/n − (x−μ)·w·r³·S_ggx/n + (x−μ)·ggw·r + ggb
    gw' = r·(S_gygg − S_gy·S_gg/n − r²·S_gyx·S_ggx/n)
    gx' = (x−μ)·[w·r³/n·(S_gg·S_gy/n − S_gygg + 3·r²·S_gyx·S_ggx/n) − ggw·r³·S_gyx/n]
          + gy·[ggw·r − w·r³·S_ggx/n] − ggx·w·r³·S_gyx/n
          + w·r³/n²·(S_ggx·S_gy + S_gyx·S_gg) − ggw·r·S_gy/n

(PyTorch's ``batchnorm_double_backward`` regrouped). Third derivatives are not
supported. Three custom ops, each with a fake implementation, follow the op recipe of
:mod:`orthocore.ops._autograd`: ``batch_norm_train`` (derivative:
``batch_norm_train_backward``, PyTorch's own first backward, whose derivative is
``batch_norm_double_backward``, the fused kernel). Where no compiled kernel runs on a device, :func:`fused_available` is false
and :class:`orthocore.models.BatchNorm2d` uses PyTorch's own batch norm.
"""

from __future__ import annotations

import torch
from torch import Tensor

from orthocore.checks import check_same, check_shape, check_tensor
from orthocore.dispatch import BackendUnavailableError, Draw, OpBackends, Sample
from orthocore.formulas import accumulate_dtype
from orthocore.formulas.batch_norm import double_backward_coefficients, upstream_or_zeros
from orthocore.ops._autograd import differentiable

_OP = "batch_norm_double_backward"


def _reduce_dims(x: Tensor) -> tuple[int, ...]:
    return (0, *range(2, x.dim()))


def batch_norm_double_backward_reference(
    ggx: Tensor, ggw: Tensor | None, ggb: Tensor | None, gy: Tensor, x: Tensor, weight: Tensor, mean: Tensor,
    invstd: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """Plain-PyTorch double backward (the formulas of the module docstring); the kernels'
    oracle. Its precision is the kernels' contract: the per-channel sums and coefficients
    in float64, the two full-size outputs computed in float64 for float64 inputs and in
    float32 otherwise (``accumulate_dtype``), from the coefficients rounded to that dtype
    — so a coefficient beyond float32's range gives the same inf/NaN everywhere.

    Args:
        ggx: :math:`(B, C, *)` upstream gradient of the first backward's ``grad_x``.
        ggw, ggb: :math:`(C,)` upstream gradients of ``grad_weight`` / ``grad_bias``, or None.
        gy: :math:`(B, C, *)` the first backward's incoming gradient.
        x: :math:`(B, C, *)` the forward's input.
        weight: :math:`(C,)`.
        mean, invstd: :math:`(C,)` the forward's batch statistics.

    Returns:
        ``(ggy, gx, gw)``: :math:`(B, C, *)` in x's dtype, :math:`(B, C, *)`, :math:`(C,)` in
        weight's dtype.
    """
    dims = _reduce_dims(x)
    n = max(1, x.numel() // max(1, x.shape[1]))  # elements per channel (1 for empty x: no division by 0)
    shape = (1, x.shape[1]) + (1,) * (x.dim() - 2)

    acc = accumulate_dtype(x.dtype)

    def c(t: Tensor, dtype: torch.dtype = torch.float64) -> Tensor:
        return t.to(dtype).view(shape)

    xd, gyd, ggd = x.double(), gy.double(), ggx.double()
    xmu = xd - c(mean)
    sums = gyd.sum(dims), (gyd * xmu).sum(dims), ggd.sum(dims), (ggd * xmu).sum(dims), (gyd * ggd).sum(dims)
    upstream = upstream_or_zeros(ggw, ggb, weight, torch.float64)
    k = double_backward_coefficients(*sums, weight.double(), invstd.double(), *upstream, n)
    xmu, g, gg = x.to(acc) - c(mean, acc), gy.to(acc), ggx.to(acc)
    ggy = c(k.a, acc) * gg + xmu * c(k.b, acc) + c(k.c, acc)
    gx = xmu * c(k.cx, acc) + g * c(k.cgy, acc) + gg * c(k.cgg, acc) + c(k.c0, acc)
    return ggy.to(x.dtype), gx.to(x.dtype), k.gw.to(weight.dtype)


def _compiled(ggx, ggw, ggb, gy, x, weight, mean, invstd):
    return torch.ops.orthocore.batch_norm_double_backward_fused(ggx, ggw, ggb, gy, x, weight, mean, invstd)


def _triton(ggx, ggw, ggb, gy, x, weight, mean, invstd):
    from orthocore.kernels import batch_norm as kernels

    return kernels.double_backward(ggx, ggw, ggb, gy, x, weight, mean, invstd)


# On a GPU the Triton kernel is opt-in (``orthocore.use_backend("triton")`` or
# ``ORTHOCORE_BACKEND=triton``): it is tested under Triton's interpreter against the
# reference, but its speed on a GPU is not measured yet, so CUDA tensors keep PyTorch's
# batch norm by default (gpu_order is empty).
def _sample(device: torch.device, draw: Draw) -> Sample:
    x, gy, ggx = draw(8, 4, 5, 5), draw(8, 4, 5, 5), draw(8, 4, 5, 5)
    weight, ggw, ggb = draw(4, rand=torch.rand) + 0.5, draw(4), draw(4)
    mean, invstd = x.mean((0, 2, 3)), (x.var((0, 2, 3), unbiased=False) + 1e-5).rsqrt()
    return Sample("batch_norm double backward, 8 x 4x5x5",
                  lambda: batch_norm_double_backward(ggx, ggw, ggb, gy, x, weight, mean, invstd), 1e-4)


DOUBLE_BACKWARD = OpBackends(_OP, {"reference": batch_norm_double_backward_reference, "cpu": _compiled,
                                   "triton": _triton}, gpu_order=(), sample=_sample)  # fmt: skip


def fused_available(device: torch.device) -> bool:
    """True when a compiled double-backward kernel runs on ``device`` under the current
    backend choice (the CPU backend on the CPU; the Triton kernel where it is forced).
    False where only the reference would run, or where a forced backend has no kernel for
    this op (``ORTHOCORE_BACKEND=cuda``): :class:`orthocore.models.BatchNorm2d` then uses
    PyTorch's batch norm."""
    try:
        return DOUBLE_BACKWARD.select(device) != "reference"
    except BackendUnavailableError:
        return False


def _check_inputs(ggx, ggw, ggb, gy, x, weight, mean, invstd) -> None:
    for name, t in (("ggx", ggx), ("gy", gy), ("x", x), ("weight", weight), ("mean", mean), ("invstd", invstd)):
        check_tensor(t, name, floating=True, where=_OP)
    channels = check_shape(x, "x", ["B", "C", "*"], where=_OP)["C"]
    for name, t in (("gy", gy), ("ggx", ggx)):
        check_same(t, x, (name, "x"), where=_OP)
    for name, t in (("weight", weight), ("mean", mean), ("invstd", invstd), ("ggw", ggw), ("ggb", ggb)):
        if t is not None:
            check_shape(t, name, [channels], where=_OP)


@torch.library.custom_op("orthocore::batch_norm_double_backward", mutates_args=())
def _double_backward_op(
    ggx: Tensor, ggw: Tensor | None, ggb: Tensor | None, gy: Tensor, x: Tensor, weight: Tensor, mean: Tensor,
    invstd: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    _check_inputs(ggx, ggw, ggb, gy, x, weight, mean, invstd)
    if x.numel() == 0:  # nothing to sum: every backend gives the reference's (C,) result, NaN statistics included
        return batch_norm_double_backward_reference(ggx, ggw, ggb, gy, x, weight, mean, invstd)
    return DOUBLE_BACKWARD(x.device)(ggx, ggw, ggb, gy, x, weight, mean, invstd)


@_double_backward_op.register_fake
def _(ggx, ggw, ggb, gy, x, weight, mean, invstd):
    return torch.empty_like(x), torch.empty_like(x), torch.empty_like(weight)


def batch_norm_double_backward(ggx, ggw, ggb, gy, x, weight, mean, invstd) -> tuple[Tensor, Tensor, Tensor]:
    """The fused double backward (arguments and results as in the reference); not
    differentiable."""
    return _double_backward_op(ggx, ggw, ggb, gy, x, weight, mean, invstd)


@torch.library.custom_op("orthocore::batch_norm_train_backward", mutates_args=())
def _train_backward_op(
    gy: Tensor, x: Tensor, weight: Tensor, mean: Tensor, invstd: Tensor, eps: float
) -> tuple[Tensor, Tensor, Tensor]:
    """PyTorch's first backward of train-mode batch norm: ``(gx, gw, gb)``."""
    return torch.ops.aten.native_batch_norm_backward(gy, x, weight, None, None, mean, invstd, True, eps, [True] * 3)


@_train_backward_op.register_fake
def _(gy, x, weight, mean, invstd, eps):
    return torch.empty_like(x), torch.empty_like(weight), torch.empty_like(weight)


@torch.library.custom_op("orthocore::batch_norm_train", mutates_args=())
def _train_op(x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """PyTorch's train-mode batch norm without running statistics: ``(y, mean, invstd)``."""
    return torch.native_batch_norm(x, weight, bias, None, None, True, 0.0, eps)


@_train_op.register_fake
def _(x, weight, bias, eps):
    return torch.native_batch_norm(x, weight, bias, None, None, True, 0.0, eps)  # fake tensors propagate shapes


def _train_setup_context(ctx, inputs, output) -> None:
    x, weight, _, eps = inputs
    _, mean, invstd = output
    ctx.mark_non_differentiable(mean, invstd)
    ctx.save_for_backward(x, weight, mean, invstd)
    ctx.eps = eps


def _train_backward(ctx, gy: Tensor, _grad_mean, _grad_invstd):
    """PyTorch's first backward; in its differentiable form (derivative: the fused op)
    when a graph of it is built (double backprop)."""
    x, weight, mean, invstd = ctx.saved_tensors
    backward = _differentiable_train_backward if torch.is_grad_enabled() else _train_backward_op
    gx, gw, gb = backward(gy, x, weight, mean, invstd, ctx.eps)
    return gx, gw, gb, None


def _train_backward_setup_context(ctx, inputs, output) -> None:
    gy, x, weight, mean, invstd, _ = inputs
    ctx.save_for_backward(gy, x, weight, mean, invstd)


def _train_double_backward(ctx, ggx: Tensor | None, ggw: Tensor | None, ggb: Tensor | None):
    """The derivative of the first backward: the fused op."""
    gy, x, weight, mean, invstd = ctx.saved_tensors
    if ggx is None:
        ggx = torch.zeros_like(x)
    ggy, gx, gw = batch_norm_double_backward(ggx, ggw, ggb, gy, x, weight, mean, invstd)
    return ggy, gx, gw, None, None, None


_differentiable_train_backward = differentiable(
    "batch_norm_train_backward", _train_backward_op, _train_double_backward, _train_backward_setup_context
)
_differentiable_train = differentiable("batch_norm_train", _train_op, _train_backward, _train_setup_context)


def batch_norm_train(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor, Tensor]:
    """Batch norm with batch statistics, twice differentiable through the fused op.

    Args:
        x: :math:`(B, C, *)` floating tensor, ``B·prod(*) > 1``.
        weight, bias: :math:`(C,)` affine parameters.
        eps: added to the variance.

    Returns:
        ``(y, mean, invstd)``: :math:`(B, C, *)` normalised output, and the :math:`(C,)`
        batch mean and ``1/sqrt(biased variance + eps)`` (not differentiable).

    Examples:
        >>> import torch
        >>> x = torch.tensor([[[1.0], [2.0]], [[3.0], [6.0]]])  # (B=2, C=2, 1)
        >>> y, mean, invstd = batch_norm_train(x, torch.ones(2), torch.zeros(2), eps=0.0)
        >>> y.flatten().tolist(), mean.tolist()
        ([-1.0, -1.0, 1.0, 1.0], [2.0, 4.0])
    """
    return _differentiable_train(x, weight, bias, float(eps))
