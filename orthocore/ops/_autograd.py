"""How a differentiable op gets its autograd, in one place.

An op's derivative is written once, as a ``setup_context`` and a ``backward`` function
(the signatures of :func:`torch.library.register_autograd`), and reaches every caller:

* :func:`torch.library.register_autograd` registers it on the custom op, for callers of
  ``torch.ops.orthocore.<op>`` (eager autograd, ``torch.compile``);
* the op's Python function calls it through an ``autograd.Function`` built from the same
  two functions. ``torch.func`` transforms (the trainer takes input gradients inside
  ``torch.func.grad``) accept only a Function that defines ``setup_context``, and the one
  that ``register_autograd`` generates does not (pytorch/pytorch#168393, #170834,
  #179652), so calling the custom op directly inside ``torch.func.grad`` fails.

A backward that must itself be differentiable (double backprop) is a custom op with
its own derivative registered the same way, called through its Function.

Eager calls skip the custom op's Python dispatch (tens of microseconds a call, which on
small tensors costs as much as the kernel): on plain tensors the Function's forward calls
the op's implementation (``eager``) directly (:func:`runs_eagerly`). Tracing needs the op
itself, with its fake implementation: under ``torch.compile`` and on any tensor subclass
(the fake tensors of ``aot_autograd`` and ``torch.export``) the op is called. Under
``torch.func`` transforms the Function's forward runs on plain tensors, so the direct call
serves them too.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


_PLAIN = (torch.Tensor, torch.nn.Parameter)


def runs_eagerly(*inputs) -> bool:
    """Whether an op may call its implementation directly on ``inputs``: nothing traces it
    (no ``torch.compile``) and every tensor among them is a plain tensor, not a subclass
    whose own dispatch (a fake tensor's, for one) must see the op."""
    if torch.compiler.is_compiling():
        return False
    return all(type(x) in _PLAIN for x in inputs if isinstance(x, torch.Tensor))


def differentiable(
    name: str, op, backward: Callable, setup_context: Callable, eager: Callable | None = None
) -> Callable:
    """Registers ``backward``/``setup_context`` as ``op``'s autograd and returns a function
    that calls ``op`` with that autograd in eager mode, under ``torch.func`` transforms
    and under ``torch.compile``.

    Args:
        name: the op's name in the ``orthocore`` namespace.
        op: the ``torch.library.custom_op`` of that name.
        backward: ``backward(ctx, *grad_outputs) -> one gradient (or None) per input``.
        setup_context: ``setup_context(ctx, inputs, output)``, saving what ``backward`` needs.
        eager: the op's implementation, called in place of the op when nothing traces it
            (the op's own checks, if it has them, are then the caller's to make).

    Returns:
        ``apply(*inputs)`` with the op's positional inputs.
    """
    torch.library.register_autograd(op, backward, setup_context=setup_context)
    packet = getattr(torch.ops.orthocore, name)  # what torch.compile traces (it cannot wrap op itself)

    def forward(*inputs):
        return eager(*inputs) if eager is not None and runs_eagerly(*inputs) else packet(*inputs)

    function = type(
        f"{name}_autograd",
        (torch.autograd.Function,),
        {
            "forward": staticmethod(forward),
            "setup_context": staticmethod(setup_context),
            "backward": staticmethod(backward),
        },
    )

    def apply(*inputs):
        if torch.compiler.is_compiling() and not _needs_grad(inputs):
            # Nothing to differentiate: the op itself. (torch.compile cannot trace such a
            # Function when no input requires grad: it hands the Function's context to a
            # forward that takes none.)
            return packet(*inputs)
        return function.apply(*inputs)

    return apply


def _needs_grad(inputs) -> bool:
    return torch.is_grad_enabled() and any(isinstance(x, torch.Tensor) and x.requires_grad for x in inputs)
