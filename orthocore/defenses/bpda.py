"""BPDA, Backward Pass Differentiable Approximation (Athalye, Carlini and Wagner,
"Obfuscated Gradients Give a False Sense of Security", ICML 2018): the exact
transformation forward, the gradient of a differentiable stand-in backward.

Input-transformation defenses (JPEG, bit-depth reduction, TV minimisation) have no
useful gradient: their ops are not differentiable, or are piecewise constant. An
attacker who knows the defense replaces the transformation's backward pass by that of
the identity (``t(x) ≈ x``, the attack that broke these defenses in that paper) or of a
smooth approximation of it, and attacks the defended model white-box. The forward pass
stays the exact defense, so every logit, every "fooled?" decision and every counted
outcome is that of the real defended model; only the direction the attack steps in
changes.

Examples:
    >>> import torch
    >>> from orthocore.defenses import BitDepth
    >>> x = torch.tensor([[[[0.2, 0.7]]]], requires_grad=True)
    >>> y = straight_through(x, BitDepth(1))
    >>> y.detach().flatten().tolist(), torch.autograd.grad(y.sum(), x)[0].flatten().tolist()
    ([0.0, 1.0], [1.0, 1.0])
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Transform = Callable[[Tensor], Tensor]


class _StraightThrough(torch.autograd.Function):
    """``transform(x)`` forward; backward the vector-Jacobian product of
    ``approximation`` at ``x`` (the identity's when it is None)."""

    @staticmethod
    def forward(x: Tensor, transform: Transform, approximation: Transform | None) -> Tensor:
        with torch.no_grad():
            return transform(x)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, _, approximation = inputs
        ctx.approximation = approximation
        if approximation is not None:
            ctx.save_for_backward(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        if ctx.approximation is None:
            return grad, None, None
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            (grad_x,) = torch.autograd.grad(ctx.approximation(x), x, grad)
        return grad_x, None, None


def straight_through(x: Tensor, transform: Transform, approximation: Transform | None = None) -> Tensor:
    """``transform(x)`` whose gradient is that of ``approximation`` (default: the identity).

    Args:
        x: :math:`(B, C, H, W)` images.
        transform: the exact transformation (need not be differentiable).
        approximation: a differentiable function of ``x`` with the shape of
            ``transform(x)``; None takes the identity (straight-through).

    Returns:
        ``transform(x)``, bit for bit, differentiable in ``x``.
    """
    return _StraightThrough.apply(x, transform, approximation)
