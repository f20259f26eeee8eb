"""Triton kernel of ``orthocore::bilateral`` (math in orthocore/ops/bilateral.py).

Program (image·row, column block) keeps the centre pixels of all channels, the
per-channel weighted sums and the weight total of BLOCK output pixels in registers
and walks the circular window tap by tap (unrolled: the radius is a compile-time
constant), reading each neighbour row once per tap from the cache. The input arrives
reflect-padded, so no load needs a border test.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _bilateral_kernel(
    padded_ptr,  # (B, C, H + 2R, W + 2R) contiguous, reflect-padded input
    out_ptr,  # (B, C, H, W) out
    height,  # H
    width,  # W
    color_coeff,  # -1 / (2 sigma_color^2)
    space_coeff,  # -1 / (2 sigma_space^2)
    CHANNELS: tl.constexpr,
    CHANNELS_POW2: tl.constexpr,
    RADIUS: tl.constexpr,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)  # b * H + y
    image = row // height
    y = row % height
    padded_width = width + 2 * RADIUS
    padded_plane = (height + 2 * RADIUS) * padded_width
    x = tl.program_id(1).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    channel = tl.arange(0, CHANNELS_POW2).to(tl.int64)
    mask = (channel[:, None] < CHANNELS) & (x[None, :] < width)  # (C, BLOCK)
    centre_ptr = (
        padded_ptr + (image * CHANNELS + channel[:, None]) * padded_plane + (y + RADIUS) * padded_width + RADIUS + x[None, :]
    )
    centre = tl.load(centre_ptr, mask=mask, other=0.0).to(tl.float32)
    sums = tl.zeros((CHANNELS_POW2, BLOCK), dtype=tl.float32)
    total = tl.zeros((BLOCK,), dtype=tl.float32)
    for dy in tl.static_range(-RADIUS, RADIUS + 1):
        for dx in tl.static_range(-RADIUS, RADIUS + 1):
            if dy * dy + dx * dx <= RADIUS * RADIUS:
                neighbour = tl.load(centre_ptr + dy * padded_width + dx, mask=mask, other=0.0).to(tl.float32)
                distance = tl.sum(tl.abs(neighbour - centre), axis=0)  # (BLOCK,)
                tap_weight = tl.exp((dy * dy + dx * dx) * space_coeff)
                weight = tap_weight * tl.exp(color_coeff * distance * distance)
                total += weight
                sums += weight[None, :] * neighbour
    out = sums / total[None, :]
    out_ptrs = out_ptr + (image * CHANNELS + channel[:, None]) * (height * width) + y * width + x[None, :]
    tl.store(out_ptrs, out.to(out_ptr.dtype.element_ty), mask=mask)


def bilateral(padded: torch.Tensor, radius: int, sigma_color: float, sigma_space: float) -> torch.Tensor:
    """Bilateral filter of a reflect-padded :math:`(B, C, H + 2r, W + 2r)` tensor.

    Float64 inputs are filtered in float32 and returned as float64.

    Returns:
        :math:`(B, C, H, W)` in the dtype of ``padded``.
    """
    batch, channels = padded.shape[:2]
    height, width = padded.shape[2] - 2 * radius, padded.shape[3] - 2 * radius
    out = torch.empty((batch, channels, height, width), dtype=padded.dtype, device=padded.device)
    if out.numel() == 0:
        return out
    block = min(128, triton.next_power_of_2(width))
    grid = (batch * height, triton.cdiv(width, block))
    _bilateral_kernel[grid](
        padded.contiguous(),
        out,
        height,
        width,
        -0.5 / (sigma_color * sigma_color),
        -0.5 / (sigma_space * sigma_space),
        CHANNELS=channels,
        CHANNELS_POW2=triton.next_power_of_2(channels),
        RADIUS=radius,
        BLOCK=block,
    )
    return out
