"""δ of Eq. 1 and its backward coefficients from per-row statistics.

Every ``normalized_dot`` backend reduces a row pair ``(a_i, b_i)`` to the statistics
``[a·b, ‖a‖², ‖b‖²]``; these functions turn them into δ (forward) and into the four
per-row coefficients of the backward pass. Rows where either input is all zeros get
δ = 0 and zero coefficients, never NaN.
"""

from __future__ import annotations

import torch
from torch import Tensor


def safe_inverse_norms(stats: Tensor) -> tuple[Tensor, Tensor]:
    """``(1/(‖a‖‖b‖), valid)`` per row of :math:`(B, 3)` statistics; 0 where a row is
    all zeros, with NaN-free gradients."""
    aa, bb = stats[:, 1], stats[:, 2]
    valid = (aa > 0) & (bb > 0)
    one = torch.ones_like(aa)
    inv = torch.where(valid, torch.rsqrt(torch.where(valid, aa, one)) * torch.rsqrt(torch.where(valid, bb, one)), 0)
    return inv, valid


def delta_from_stats(stats: Tensor, dtype: torch.dtype) -> Tensor:
    """δ :math:`(B,)` in ``dtype`` from row statistics :math:`(B, 3)`."""
    inv, _ = safe_inverse_norms(stats)
    return (stats[:, 0] * inv).to(dtype)


def backward_coefficients(grad_delta: Tensor, stats: Tensor) -> Tensor:
    """Per-row coefficients of the backward pass.

    ``grad_a = c[:, 0:1] * b + c[:, 1:2] * a`` and ``grad_b = c[:, 2:3] * a + c[:, 3:4] * b``.

    Args:
        grad_delta: :math:`(B,)` upstream gradient.
        stats: :math:`(B, 3)` row statistics.

    Returns:
        :math:`(B, 4)` in the dtype of ``stats``; zero rows get zero coefficients.
    """
    inv, valid = safe_inverse_norms(stats)
    g = grad_delta.to(stats.dtype)
    delta = stats[:, 0] * inv
    one = torch.ones_like(inv)
    gd = torch.where(valid, g * delta, 0)
    return torch.stack(
        (g * inv, -gd / torch.where(valid, stats[:, 1], one), g * inv, -gd / torch.where(valid, stats[:, 2], one)),
        dim=1,
    )  # (B, 4)
