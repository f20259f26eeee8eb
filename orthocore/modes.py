"""Switching models into evaluation mode for a block of code, and back (a leaf module:
it imports only torch, so every layer may use it)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


@contextlib.contextmanager
def eval_mode(*models: nn.Module) -> Iterator[None]:
    """Puts every model in eval mode (batch-norm running statistics, dropout off) inside
    the block and restores each one's own mode afterwards, also on an exception.
    Anything that is not an ``nn.Module`` (a plain function) is left alone.

    Examples:
        >>> from torch import nn
        >>> net = nn.Dropout().train()
        >>> with eval_mode(net):
        ...     net.training
        False
        >>> net.training
        True
    """
    modules = [m for m in models if isinstance(m, nn.Module)]
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)
