"""Triton kernels of ``orthocore::batch_norm_double_backward`` (math in
orthocore/formulas/batch_norm.py and orthocore/ops/batch_norm.py).

Sums: program (channel, split) adds ``gy``, ``gy·(x−μ)``, ``ggx``, ``ggx·(x−μ)`` and
``gy·ggx`` over one channel's planes of a range of batch rows into a ``(C, splits, 5)``
partial buffer; the launcher adds the splits (a deterministic sum, no atomics) and
computes the per-channel coefficients. Outputs: one program per ``BLOCK`` elements of
the flattened tensors writes ``ggy = a·ggx + b·(x−μ) + c`` and
``gx = cx·(x−μ) + cgy·gy + cgg·ggx + c0``, reading each element's channel coefficients
from the small ``(C, 8)`` table.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from orthocore.formulas import accumulate_dtype
from orthocore.formulas.batch_norm import double_backward_coefficients, upstream_or_zeros

_BLOCK = 1024
_MAX_SPLITS = 64
_SPLIT_ELEMENTS = 4096


@triton.jit
def _sums_kernel(
    ggx_ptr,  # (B, C, P) contiguous upstream gradient of grad_x
    gy_ptr,  # (B, C, P) contiguous incoming gradient of the first backward
    x_ptr,  # (B, C, P) contiguous forward input
    mean_ptr,  # (C,) batch mean (float64)
    partial_ptr,  # (C, SPLITS, 5) out: per-split sums (float64)
    batch,  # B
    channels,  # C
    plane,  # P: elements per (row, channel)
    rows_per_split,
    SPLITS: tl.constexpr,
    BLOCK: tl.constexpr,
):
    channel = tl.program_id(0).to(tl.int64)
    split = tl.program_id(1).to(tl.int64)
    acc_dtype = partial_ptr.dtype.element_ty
    mean = tl.load(mean_ptr + channel)
    s_gy = tl.zeros((BLOCK,), dtype=acc_dtype)
    s_gyx = tl.zeros((BLOCK,), dtype=acc_dtype)
    s_gg = tl.zeros((BLOCK,), dtype=acc_dtype)
    s_ggx = tl.zeros((BLOCK,), dtype=acc_dtype)
    s_gygg = tl.zeros((BLOCK,), dtype=acc_dtype)
    first = split * rows_per_split
    for row in range(first, tl.minimum(first + rows_per_split, batch)):
        base = (row * channels + channel) * plane
        for offset in range(0, plane, BLOCK):
            here = offset + tl.arange(0, BLOCK)
            mask = here < plane
            g = tl.load(gy_ptr + base + here, mask=mask, other=0.0).to(acc_dtype)
            gg = tl.load(ggx_ptr + base + here, mask=mask, other=0.0).to(acc_dtype)
            xmu = tl.where(mask, tl.load(x_ptr + base + here, mask=mask, other=0.0).to(acc_dtype) - mean, 0.0)
            s_gy += g
            s_gyx += g * xmu
            s_gg += gg
            s_ggx += gg * xmu
            s_gygg += g * gg
    out = partial_ptr + (channel * SPLITS + split) * 5
    tl.store(out + 0, tl.sum(s_gy, axis=0))
    tl.store(out + 1, tl.sum(s_gyx, axis=0))
    tl.store(out + 2, tl.sum(s_gg, axis=0))
    tl.store(out + 3, tl.sum(s_ggx, axis=0))
    tl.store(out + 4, tl.sum(s_gygg, axis=0))


@triton.jit
def _outputs_kernel(
    ggx_ptr,  # (B, C, P) contiguous
    gy_ptr,  # (B, C, P) contiguous
    x_ptr,  # (B, C, P) contiguous
    coef_ptr,  # (C, 8) per channel: a, b, c, cx, cgy, cgg, c0, mean (float64 for float64 x, else float32)
    ggy_ptr,  # (B, C, P) out: gradient of gy
    gx_ptr,  # (B, C, P) out: gradient of x
    n,  # B·C·P
    channels,  # C
    plane,  # P
    BLOCK: tl.constexpr,
):
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    coef = coef_ptr + ((offsets // plane) % channels) * 8  # a gather from a small, cached table
    gg = tl.load(ggx_ptr + offsets, mask=mask, other=0.0).to(coef_ptr.dtype.element_ty)
    g = tl.load(gy_ptr + offsets, mask=mask, other=0.0).to(coef_ptr.dtype.element_ty)
    xmu = tl.load(x_ptr + offsets, mask=mask, other=0.0).to(coef_ptr.dtype.element_ty) - tl.load(coef + 7, mask=mask)
    ggy = tl.load(coef + 0, mask=mask) * gg + tl.load(coef + 1, mask=mask) * xmu + tl.load(coef + 2, mask=mask)
    gx = (tl.load(coef + 3, mask=mask) * xmu + tl.load(coef + 4, mask=mask) * g + tl.load(coef + 5, mask=mask) * gg
          + tl.load(coef + 6, mask=mask))  # fmt: skip
    tl.store(ggy_ptr + offsets, ggy.to(ggy_ptr.dtype.element_ty), mask=mask)
    tl.store(gx_ptr + offsets, gx.to(gx_ptr.dtype.element_ty), mask=mask)


def double_backward(ggx, ggw, ggb, gy, x, weight, mean, invstd) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(ggy, gx, gw)`` of train-mode batch norm's first backward (arguments as in
    :func:`orthocore.ops.batch_norm.batch_norm_double_backward_reference`, checked by the
    op; ``x`` not empty, as the op answers empty inputs with the reference): sums and
    coefficients in float64 like the CPU kernel, outputs computed in float64 for float64
    inputs and float32 otherwise."""
    batch, channels = x.shape[0], x.shape[1]
    plane = x[0, 0].numel()
    acc = accumulate_dtype(x.dtype)  # of the output pass; the sums and coefficients are float64, as on the CPU
    ggx, gy, x = ggx.contiguous(), gy.contiguous(), x.contiguous()
    ggy, gx = torch.empty_like(x), torch.empty_like(x)
    block = min(_BLOCK, max(16, triton.next_power_of_2(plane)))  # small planes: fewer idle lanes
    # Enough splits to fill a GPU on large inputs, at least _SPLIT_ELEMENTS elements each.
    splits = max(1, min(batch, _MAX_SPLITS, triton.cdiv(batch * plane, _SPLIT_ELEMENTS)))
    rows_per_split = triton.cdiv(batch, splits)
    f64 = torch.float64
    partial = torch.zeros(channels, splits, 5, dtype=f64, device=x.device)
    mean64 = mean.to(f64).contiguous()
    _sums_kernel[(channels, splits)](ggx, gy, x, mean64, partial, batch, channels, plane, rows_per_split,
                                     SPLITS=splits, BLOCK=block)  # fmt: skip
    sums = partial.sum(1).unbind(1)
    upstream = upstream_or_zeros(ggw, ggb, weight, f64)
    k = double_backward_coefficients(*sums, weight.to(f64), invstd.to(f64), *upstream, batch * plane)
    coef = torch.stack([k.a, k.b, k.c, k.cx, k.cgy, k.cgg, k.c0, mean64], dim=1).to(acc).contiguous()  # (C, 8)
    _outputs_kernel[(triton.cdiv(x.numel(), _BLOCK),)](ggx, gy, x, coef, ggy, gx, x.numel(), channels, plane,
                                                        BLOCK=_BLOCK)  # fmt: skip
    return ggy, gx, k.gw.to(weight.dtype)
