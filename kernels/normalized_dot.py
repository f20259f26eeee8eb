"""Triton kernels of ``orthocore::normalized_dot`` (math in orthocore/formulas/normalized_dot.py).

Forward: program (row, split) sums ``a·b``, ``‖a‖²``, ``‖b‖²`` over one column chunk of
one row into a ``(B, splits, 3)`` partial buffer; the launcher adds the splits (a
deterministic sum, no atomics). Backward: program (column block, row) writes
``grad_a = c0·b + c1·a`` and/or ``grad_b = c2·a + c3·b`` from per-row coefficients.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from orthocore.formulas import accumulate_dtype
from orthocore.formulas.normalized_dot import backward_coefficients, delta_from_stats

_BLOCK = 1024


@triton.jit
def _normalized_dot_fwd_kernel(
    a_ptr,  # (B, D) contiguous input a
    b_ptr,  # (B, D) contiguous input b
    partial_ptr,  # (B, SPLITS, 3) out: per-split sums a.b, |a|^2, |b|^2 (accumulation dtype)
    cols,  # D
    chunk,  # columns per split, a multiple of BLOCK
    SPLITS: tl.constexpr,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    split = tl.program_id(1).to(tl.int64)
    acc_dtype = partial_ptr.dtype.element_ty
    ab = tl.zeros((BLOCK,), dtype=acc_dtype)
    aa = tl.zeros((BLOCK,), dtype=acc_dtype)
    bb = tl.zeros((BLOCK,), dtype=acc_dtype)
    start = split * chunk
    for offset in range(0, chunk, BLOCK):
        cols_here = start + offset + tl.arange(0, BLOCK)
        mask = cols_here < cols
        x = tl.load(a_ptr + row * cols + cols_here, mask=mask, other=0.0).to(acc_dtype)
        y = tl.load(b_ptr + row * cols + cols_here, mask=mask, other=0.0).to(acc_dtype)
        ab += x * y
        aa += x * x
        bb += y * y
    out = partial_ptr + (row * SPLITS + split) * 3
    tl.store(out + 0, tl.sum(ab, axis=0))
    tl.store(out + 1, tl.sum(aa, axis=0))
    tl.store(out + 2, tl.sum(bb, axis=0))


@triton.jit
def _normalized_dot_bwd_kernel(
    a_ptr,  # (B, D) contiguous input a
    b_ptr,  # (B, D) contiguous input b
    coef_ptr,  # (B, 4) per-row coefficients (accumulation dtype)
    grad_a_ptr,  # (B, D) out: gradient of a (unused unless NEED_A)
    grad_b_ptr,  # (B, D) out: gradient of b (unused unless NEED_B)
    cols,  # D
    NEED_A: tl.constexpr,
    NEED_B: tl.constexpr,
    BLOCK: tl.constexpr,
):
    block = tl.program_id(0).to(tl.int64)
    row = tl.program_id(1).to(tl.int64)
    acc_dtype = coef_ptr.dtype.element_ty
    cols_here = block * BLOCK + tl.arange(0, BLOCK)
    mask = cols_here < cols
    x = tl.load(a_ptr + row * cols + cols_here, mask=mask, other=0.0).to(acc_dtype)
    y = tl.load(b_ptr + row * cols + cols_here, mask=mask, other=0.0).to(acc_dtype)
    if NEED_A:
        c0 = tl.load(coef_ptr + row * 4 + 0)
        c1 = tl.load(coef_ptr + row * 4 + 1)
        tl.store(grad_a_ptr + row * cols + cols_here, (c0 * y + c1 * x).to(grad_a_ptr.dtype.element_ty), mask=mask)
    if NEED_B:
        c2 = tl.load(coef_ptr + row * 4 + 2)
        c3 = tl.load(coef_ptr + row * 4 + 3)
        tl.store(grad_b_ptr + row * cols + cols_here, (c2 * x + c3 * y).to(grad_b_ptr.dtype.element_ty), mask=mask)


def _splits(rows: int, cols: int, device: torch.device) -> int:
    """Column splits per row: enough programs to fill the GPU a few times over."""
    units = torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 1
    return max(1, min(triton.cdiv(4 * units, max(rows, 1)), triton.cdiv(cols, 4 * _BLOCK)))


def forward(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """δ and row statistics of two contiguous :math:`(B, D)` tensors.

    Returns:
        ``(delta, stats)``: :math:`(B,)` in the input dtype and :math:`(B, 3)` in the
        accumulation dtype.
    """
    rows, cols = a.shape
    acc = accumulate_dtype(a.dtype)
    if rows == 0 or cols == 0:
        stats = torch.zeros((rows, 3), dtype=acc, device=a.device)
        return delta_from_stats(stats, a.dtype), stats
    splits = _splits(rows, cols, a.device)
    chunk = triton.cdiv(triton.cdiv(cols, splits), _BLOCK) * _BLOCK
    partial = torch.empty((rows, splits, 3), dtype=acc, device=a.device)
    _normalized_dot_fwd_kernel[(rows, splits)](a, b, partial, cols, chunk, SPLITS=splits, BLOCK=_BLOCK)
    stats = partial.sum(1)  # (B, 3)
    return delta_from_stats(stats, a.dtype), stats


def backward(
    grad_delta: torch.Tensor, a: torch.Tensor, b: torch.Tensor, stats: torch.Tensor, need_a: bool, need_b: bool
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Gradients of ``sum(grad_delta * delta)`` for contiguous :math:`(B, D)` inputs.

    Returns:
        ``(grad_a, grad_b)``, each :math:`(B, D)` or ``None`` when not asked for.
    """
    rows, cols = a.shape
    grad_a = torch.empty_like(a) if need_a else None
    grad_b = torch.empty_like(b) if need_b else None
    if rows == 0 or cols == 0 or not (need_a or need_b):
        return grad_a, grad_b
    coef = backward_coefficients(grad_delta, stats.to(accumulate_dtype(a.dtype))).contiguous()  # (B, 4)
    grid = (triton.cdiv(cols, _BLOCK), rows)
    _normalized_dot_bwd_kernel[grid](
        a, b, coef, grad_a if need_a else a, grad_b if need_b else b, cols, NEED_A=need_a, NEED_B=need_b, BLOCK=_BLOCK
    )
    return grad_a, grad_b
