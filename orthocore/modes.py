"""Switching models into evaluation mode for a block of code, and back (a leaf module:
it imports only torch, so every layer may use it)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


@contextlib.contextmanager
def eval_mode(*models: nn.Module) -> Iterator[None]:
    """Puts every model in eval mode (batch-norm running statistics, dropout off) inside
    the block and restores the mode of each model and of each of its submodules
    afterwards, also on an exception (a model may hold submodules kept in eval mode, and
    an ensemble holds models in modes of their own).
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
    modes = [(sub, sub.training) for m in modules for sub in m.modules()]  # every submodule's own flag
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for sub, mode in modes:
            sub.training = mode
