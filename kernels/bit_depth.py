"""Triton kernel of ``orthocore::bit_depth`` (formula in orthocore/ops/bit_depth.py).

One program per ``BLOCK`` elements of the flattened tensor, in float64 like the
reference; rounding half to even is done with floor and an exact tie test, so that it
matches ``torch.round`` bit for bit.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

_BLOCK = 1024


@triton.jit
def _bit_depth_kernel(
    x_ptr,  # (N,) contiguous input in [0, 1]
    out_ptr,  # (N,) out: reduced values, same dtype
    n,  # N
    LEVELS: tl.constexpr,  # 2^bits - 1
    BLOCK: tl.constexpr,
):
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    x = tl.load(x_ptr + offsets, mask=mask, other=0.0)
    v = x.to(tl.float64) * LEVELS
    low = tl.floor(v)
    frac = v - low
    odd = (low - 2.0 * tl.floor(low * 0.5)) == 1.0
    rounded = low + ((frac > 0.5) | ((frac == 0.5) & odd)).to(tl.float64)
    out = rounded / LEVELS
    if out_ptr.dtype.element_ty != tl.float64:
        out = out.to(tl.float32)  # narrower dtypes via float32, as torch and c10 convert
    tl.store(out_ptr + offsets, out.to(out_ptr.dtype.element_ty), mask=mask)


def reduce(x: torch.Tensor, bits: int) -> torch.Tensor:
    """``rint(x·(2^bits−1)) / (2^bits−1)`` of a contiguous tensor in [0, 1], same shape and dtype."""
    out = torch.empty_like(x)
    n = x.numel()
    if n:
        _bit_depth_kernel[(triton.cdiv(n, _BLOCK),)](x, out, n, LEVELS=(1 << bits) - 1, BLOCK=_BLOCK)
    return out
