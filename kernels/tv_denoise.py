"""Triton kernel of ``orthocore::tv_denoise`` (math in orthocore/ops/tv_denoise.py).

One program per (image, channel) plane runs every iteration: a primal pass writes
``u = f − div p`` over the plane tile by tile, a barrier, then a dual pass updates
``p`` from the forward differences of ``u``, and a barrier again. ``u`` and ``p`` live in
global scratch that stays in the cache of the program's SM; one launch covers all
iterations, so small planes (CIFAR) pay no per-iteration launch.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from orthocore.formulas import accumulate_dtype
from orthocore.formulas.tv_denoise import TAU


@triton.jit
def _tv_denoise_kernel(
    f_ptr,  # (planes, H*W) contiguous input
    u_ptr,  # (planes, H*W) out: the primal u (accumulation dtype); holds the result at exit
    py_ptr,  # (planes, H*W) scratch, zero on entry: vertical dual component
    px_ptr,  # (planes, H*W) scratch, zero on entry: horizontal dual component
    height,  # H
    width,  # W
    tau,  # step (1/4)
    tau_over_weight,  # tau / weight
    iters,  # iterations (>= 1)
    BLOCK: tl.constexpr,
):
    plane = tl.program_id(0).to(tl.int64)
    area = height * width
    base = plane * area
    acc_dtype = u_ptr.dtype.element_ty
    for step in range(iters):
        # u = f + d(p), d = -div p (out-of-plane terms zero)
        for start in range(0, area, BLOCK):
            idx = start + tl.arange(0, BLOCK)
            inside = idx < area
            y = idx // width
            x = idx % width
            py = tl.load(py_ptr + base + idx, mask=inside, other=0.0)
            px = tl.load(px_ptr + base + idx, mask=inside, other=0.0)
            py_up = tl.load(py_ptr + base + idx - width, mask=inside & (y > 0), other=0.0)
            px_left = tl.load(px_ptr + base + idx - 1, mask=inside & (x > 0), other=0.0)
            f = tl.load(f_ptr + base + idx, mask=inside, other=0.0).to(acc_dtype)
            tl.store(u_ptr + base + idx, f + ((-(py + px) + py_up) + px_left), mask=inside)
        tl.debug_barrier()
        if step + 1 < iters:
            # p <- (p - tau grad u) / (1 + tau/weight |grad u|), forward differences
            for start in range(0, area, BLOCK):
                idx = start + tl.arange(0, BLOCK)
                inside = idx < area
                y = idx // width
                x = idx % width
                has_down = inside & (y + 1 < height)
                has_right = inside & (x + 1 < width)
                u = tl.load(u_ptr + base + idx, mask=inside, other=0.0)
                u_down = tl.load(u_ptr + base + idx + width, mask=has_down, other=0.0)
                u_right = tl.load(u_ptr + base + idx + 1, mask=has_right, other=0.0)
                gy = tl.where(has_down, u_down - u, 0.0)
                gx = tl.where(has_right, u_right - u, 0.0)
                scale = 1.0 + tau_over_weight * tl.sqrt(gy * gy + gx * gx)
                py = tl.load(py_ptr + base + idx, mask=inside, other=0.0)
                px = tl.load(px_ptr + base + idx, mask=inside, other=0.0)
                tl.store(py_ptr + base + idx, (py - tau * gy) / scale, mask=inside)
                tl.store(px_ptr + base + idx, (px - tau * gx) / scale, mask=inside)
            tl.debug_barrier()


def tv_denoise(x: torch.Tensor, weight: float, iters: int) -> torch.Tensor:
    """Chambolle iterations on every plane of a contiguous :math:`(B, C, H, W)` tensor.

    Returns:
        :math:`(B, C, H, W)` in the dtype of ``x``.
    """
    batch, channels, height, width = x.shape
    planes, area = batch * channels, height * width
    acc = accumulate_dtype(x.dtype)
    u = torch.empty((planes, area), dtype=acc, device=x.device)
    if planes == 0 or area == 0:
        return u.view(x.shape).to(x.dtype)
    duals = torch.zeros((2, planes, area), dtype=acc, device=x.device)
    block = min(1024, triton.next_power_of_2(area))
    _tv_denoise_kernel[(planes,)](
        x, u, duals[0], duals[1], height, width, TAU, TAU / weight, iters, BLOCK=block, num_warps=4
    )
    return u.view(x.shape).to(x.dtype)
