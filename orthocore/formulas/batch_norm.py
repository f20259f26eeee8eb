"""Train-mode batch norm's double backward from per-channel sums (formulas in
:mod:`orthocore.ops.batch_norm`), shared by the reference and the Triton kernel.

Both outputs are affine in the inputs per channel:

    ggy = a·ggx + b·(x − μ) + c
    gx  = cx·(x − μ) + cgy·gy + cgg·ggx + c0

so a kernel makes one pass for the five sums and one for the two outputs; the
coefficients below are computed in between, per channel.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class DoubleBackwardCoefficients(NamedTuple):
    """Per-channel :math:`(C,)` coefficients of the two outputs, and the weight gradient."""

    a: Tensor
    b: Tensor
    c: Tensor
    cx: Tensor
    cgy: Tensor
    cgg: Tensor
    c0: Tensor
    gw: Tensor


def double_backward_coefficients(
    s_gy: Tensor, s_gyx: Tensor, s_gg: Tensor, s_ggx: Tensor, s_gygg: Tensor, weight: Tensor, invstd: Tensor,
    ggw: Tensor, ggb: Tensor, n: int,
) -> DoubleBackwardCoefficients:  # fmt: skip
    """The coefficients from the sums ``S_gy = Σ gy``, ``S_gyx = Σ gy·(x−μ)``,
    ``S_gg = Σ ggx``, ``S_ggx = Σ ggx·(x−μ)``, ``S_gygg = Σ gy·ggx`` over each channel's
    ``n`` elements, all :math:`(C,)` in one dtype (``ggw``/``ggb`` zeros when absent)."""
    w, r = weight, invstd
    r2, r3 = r * r, r * r * r
    return DoubleBackwardCoefficients(
        a=w * r,
        b=-w * r3 * s_ggx / n + ggw * r,
        c=-w * r * s_gg / n + ggb,
        cx=w * r3 / n * (s_gg * s_gy / n - s_gygg + 3 * r2 * s_gyx * s_ggx / n) - ggw * r3 * s_gyx / n,
        cgy=ggw * r - w * r3 * s_ggx / n,
        cgg=-w * r3 * s_gyx / n,
        c0=w * r3 / n / n * (s_ggx * s_gy + s_gyx * s_gg) - ggw * r * s_gy / n,
        gw=r * (s_gygg - s_gy * s_gg / n - r2 * s_gyx * s_ggx / n),
    )


def upstream_or_zeros(ggw: Tensor | None, ggb: Tensor | None, weight: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """The upstream gradients of the weight and bias gradients in ``dtype``, zeros where
    absent (None: the loss did not use them)."""
    zeros = torch.zeros(weight.shape, dtype=dtype, device=weight.device)
    return tuple(zeros if t is None else t.to(dtype) for t in (ggw, ggb))
