"""Closed-form pieces that the ops' references and the Triton kernels share.

This is a leaf package (layer 0, beside ``orthocore.kernels`` and
:mod:`orthocore.checks`): it imports only torch, so ``kernels/`` can use it without
importing :mod:`orthocore.ops`. One module per op family:

* :mod:`~orthocore.formulas.normalized_dot` — δ and the backward coefficients from
  per-row statistics;
* :mod:`~orthocore.formulas.batch_norm` — train-mode batch norm's double backward
  from per-channel sums;
* :mod:`~orthocore.formulas.jpeg_tables` — libjpeg's tables, DCT matrices and padding;
* :mod:`~orthocore.formulas.tv_denoise` — Chambolle's step size.
"""

from __future__ import annotations

import torch


def accumulate_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype in which kernels accumulate sums: float64 for float64, else float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32
