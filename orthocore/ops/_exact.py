"""Arithmetic that the references must do exactly as the compiled kernels do."""

from __future__ import annotations

import torch


def divide_exactly(x: torch.Tensor, divisor: float) -> torch.Tensor:
    """``x / divisor`` correctly rounded on every device, in the dtype of ``x``.

    PyTorch's CUDA kernels divide by a Python number by multiplying with its reciprocal,
    up to one ulp off the true quotient; the compiled kernels divide, so the references
    that must match them bit for bit divide by a tensor on ``x``'s device instead.
    """
    return x / torch.tensor(divisor, dtype=x.dtype, device=x.device)
