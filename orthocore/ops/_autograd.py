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
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def differentiable(name: str, op, backward: Callable, setup_context: Callable) -> Callable:
    """Registers ``backward``/``setup_context`` as ``op``'s autograd and returns a function
    that calls ``op`` with that autograd in eager mode, under ``torch.func`` transforms
    and under ``torch.compile``.

    Args:
        name: the op's name in the ``orthocore`` namespace.
        op: the ``torch.library.custom_op`` of that name.
        backward: ``backward(ctx, *grad_outputs) -> one gradient (or None) per input``.
        setup_context: ``setup_context(ctx, inputs, output)``, saving what ``backward`` needs.

    Returns:
        ``apply(*inputs)`` with the op's positional inputs.
    """
    torch.library.register_autograd(op, backward, setup_context=setup_context)
    packet = getattr(torch.ops.orthocore, name)  # what torch.compile traces (it cannot wrap op itself)

    function = type(
        f"{name}_autograd",
        (torch.autograd.Function,),
        {
            "forward": staticmethod(lambda *inputs: packet(*inputs)),
            "setup_context": staticmethod(setup_context),
            "backward": staticmethod(backward),
        },
    )
    return function.apply
