"""Triton kernels of ``orthocore::jpeg`` (pipeline and reference in orthocore/ops/jpeg.py).

Two kernels, the same two passes as the C++ kernels:

* ``_jpeg_code_blocks_kernel``: program = ``BLOCKS`` 8×8 blocks of one plane (Y, Cb or
  Cr). It reads the pixels of its blocks from the float images (edge replication,
  YCbCr conversion, 4:2:0 box downsampling for chroma), runs libjpeg's islow DCT as two
  integer matrix passes on a ``(BLOCKS, 8, 8)`` tile, quantises, dequantises, runs the
  inverse, and stores uint8 samples.
* ``_jpeg_reconstruct_kernel``: program = ``BLOCK`` output pixels: fancy chroma
  upsampling, YCbCr → RGB, ``level / 255``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from orthocore.formulas import jpeg_tables
from orthocore.formulas.jpeg_tables import padded_size

_BLOCKS = 16  # 8×8 blocks per program
_BLOCK = 1024  # output pixels per program
# The fixed-point colour constants of jpeg_tables, as compile-time constants.
(_Y_R, _Y_G, _Y_B), (_CB_R, _CB_G, _CB_B), (_CR_R, _CR_G, _CR_B) = (
    tuple(tl.constexpr(v) for v in row) for row in jpeg_tables.RGB_TO_YCC
)
_R_CR, _G_CB, _G_CR, _B_CB = (tl.constexpr(v) for v in jpeg_tables.YCC_TO_RGB)
_COLOR_BITS = tl.constexpr(jpeg_tables.COLOR_BITS)
_HALF = tl.constexpr(1 << (jpeg_tables.COLOR_BITS - 1))
_FDCT_SHIFT1, _FDCT_SHIFT2 = (tl.constexpr(v) for v in jpeg_tables.FDCT_SHIFTS)
_IDCT_SHIFT1, _IDCT_SHIFT2 = (tl.constexpr(v) for v in jpeg_tables.IDCT_SHIFTS)
_FDCT_HALF1, _FDCT_HALF2 = (tl.constexpr(1 << (v - 1)) for v in jpeg_tables.FDCT_SHIFTS)
_IDCT_HALF1, _IDCT_HALF2 = (tl.constexpr(1 << (v - 1)) for v in jpeg_tables.IDCT_SHIFTS)
_CHROMA_OFFSET = tl.constexpr((128 << jpeg_tables.COLOR_BITS) + (1 << (jpeg_tables.COLOR_BITS - 1)) - 1)


@triton.jit
def _level(x_ptr, offset, mask):
    """rint(255·x) as int32 (round half to even), computed in float64."""
    v = tl.load(x_ptr + offset, mask=mask, other=0.0).to(tl.float64) * 255.0
    low = tl.floor(v)
    frac = v - low
    odd = (low - 2.0 * tl.floor(low * 0.5)) == 1.0
    return (low + ((frac > 0.5) | ((frac == 0.5) & odd)).to(low.dtype)).to(tl.int32)


@triton.jit
def _component(x_ptr, b, r, c, height, width, mask, K0: tl.constexpr, K1: tl.constexpr, K2: tl.constexpr,
               OFFSET: tl.constexpr, CHANNELS: tl.constexpr):
    """One YCbCr component (fixed-point weights K0..K2, rounding OFFSET) of pixels (r, c)."""
    plane = height * width
    base = b * CHANNELS * plane + r * width + c
    if CHANNELS == 1:
        return _level(x_ptr, base, mask)
    red = _level(x_ptr, base, mask)
    green = _level(x_ptr, base + plane, mask)
    blue = _level(x_ptr, base + 2 * plane, mask)
    return (K0 * red + K1 * green + K2 * blue + OFFSET) >> _COLOR_BITS


@triton.jit
def _descale(x, SHIFT: tl.constexpr, HALF: tl.constexpr):
    """libjpeg's DESCALE: a right shift that rounds (HALF = 2^(SHIFT-1))."""
    return (x + HALF) >> SHIFT


@triton.jit
def _jpeg_code_blocks_kernel(
    x_ptr,  # (B, C, H, W) contiguous images in [0, 1]
    plane_ptr,  # (B, [2,] rows_p, cols_p) uint8 out: decoded samples of this plane
    table_ptr,  # (64,) int32 quantisation table of this plane, natural order
    dct_ptr,  # (2, 8, 8) int32 islow forward / inverse matrices
    height,  # H
    width,  # W
    block_rows,  # 8×8 blocks per column of this plane
    block_cols,  # 8×8 blocks per row of this plane
    total,  # blocks of this plane over the batch
    plane_stride,  # elements between images in plane_ptr
    CHANNELS: tl.constexpr,  # 1 or 3
    PLANE: tl.constexpr,  # 0 luma, 1 Cb, 2 Cr
    BLOCKS: tl.constexpr,
):
    n = tl.program_id(0).to(tl.int64) * BLOCKS + tl.arange(0, BLOCKS)
    valid = n < total
    b = (n // (block_rows * block_cols))[:, None, None]
    br = ((n // block_cols) % block_rows)[:, None, None]
    bc = (n % block_cols)[:, None, None]
    r = br * 8 + tl.arange(0, 8)[None, :, None]  # (BLOCKS, 8, 1) row in the padded plane
    c = bc * 8 + tl.arange(0, 8)[None, None, :]  # (BLOCKS, 1, 8)
    mask = valid[:, None, None] & (r >= 0) & (c >= 0)  # (BLOCKS, 8, 8)
    if PLANE == 0:
        samples = _component(x_ptr, b, tl.minimum(r, height - 1), tl.minimum(c, width - 1), height, width, mask,
                             _Y_R, _Y_G, _Y_B, _HALF, CHANNELS)
    else:
        i = tl.minimum(r, (height + 1) // 2 - 1)  # downsampled rows are replicated
        r0 = 2 * i
        r1 = tl.minimum(2 * i + 1, height - 1)
        c0 = tl.minimum(2 * c, width - 1)  # full-resolution columns are replicated
        c1 = tl.minimum(2 * c + 1, width - 1)
        K0: tl.constexpr = _CB_R if PLANE == 1 else _CR_R
        K1: tl.constexpr = _CB_G if PLANE == 1 else _CR_G
        K2: tl.constexpr = _CB_B if PLANE == 1 else _CR_B
        OFFSET: tl.constexpr = _CHROMA_OFFSET
        sums = _component(x_ptr, b, r0, c0, height, width, mask, K0, K1, K2, OFFSET, CHANNELS)
        sums += _component(x_ptr, b, r0, c1, height, width, mask, K0, K1, K2, OFFSET, CHANNELS)
        sums += _component(x_ptr, b, r1, c0, height, width, mask, K0, K1, K2, OFFSET, CHANNELS)
        sums += _component(x_ptr, b, r1, c1, height, width, mask, K0, K1, K2, OFFSET, CHANNELS)
        samples = (sums + 1 + (c & 1).to(tl.int32)) >> 2  # bias 1, 2, 1, 2, ... along the row
    idx = tl.arange(0, 8)[:, None] * 8 + tl.arange(0, 8)[None, :]  # (8, 8)
    fdct = tl.load(dct_ptr + idx)[None, :, :]
    idct = tl.load(dct_ptr + 64 + idx)[None, :, :]
    q = tl.load(table_ptr + idx)[None, :, :]
    blocks = samples - 128  # (BLOCKS, 8, 8)
    rows = _descale(tl.sum(blocks[:, :, None, :] * fdct[:, None, :, :], axis=3), _FDCT_SHIFT1, _FDCT_HALF1)  # along rows
    coef = _descale(tl.sum(fdct[:, :, :, None] * rows[:, None, :, :], axis=2), _FDCT_SHIFT2, _FDCT_HALF2)  # along columns
    divisor = 8 * q
    magnitude = (tl.abs(coef) + divisor // 2) // divisor
    dequantised = tl.where(coef < 0, -magnitude, magnitude) * q
    cols_done = _descale(tl.sum(idct[:, :, :, None] * dequantised[:, None, :, :], axis=2), _IDCT_SHIFT1, _IDCT_HALF1)
    out = _descale(tl.sum(cols_done[:, :, None, :] * idct[:, None, :, :], axis=3), _IDCT_SHIFT2, _IDCT_HALF2) + 128
    out = tl.minimum(tl.maximum(out, 0), 255)
    offset = b * plane_stride + r * (block_cols * 8) + c
    tl.store(plane_ptr + offset, out.to(tl.uint8), mask=mask)


@triton.jit
def _upsample(plane_ptr, stride, h, w, r, c, mask):
    """libjpeg's triangular chroma upsampling at output pixels (r, c) (see jpeg.h)."""
    i = r // 2
    j = c // 2
    if_odd_r = (r % 2) == 1
    if_odd_c = (c % 2) == 1
    iv = tl.where(if_odd_r, tl.minimum(i + 1, h - 1), tl.maximum(i - 1, 0))
    jn = tl.where(if_odd_c, tl.minimum(j + 1, w - 1), tl.maximum(j - 1, 0))
    here = 3 * tl.load(plane_ptr + i * stride + j, mask=mask, other=0).to(tl.int32)
    here += tl.load(plane_ptr + iv * stride + j, mask=mask, other=0).to(tl.int32)
    nxt = 3 * tl.load(plane_ptr + i * stride + jn, mask=mask, other=0).to(tl.int32)
    nxt += tl.load(plane_ptr + iv * stride + jn, mask=mask, other=0).to(tl.int32)
    fancy = (3 * here + nxt + 8 - if_odd_c.to(tl.int32)) >> 4
    if w <= 2:  # narrow planes are replicated
        fancy = tl.load(plane_ptr + i * stride + j, mask=mask, other=0).to(tl.int32)
    return fancy


@triton.jit
def _unit(level, out_ty: tl.constexpr):
    """``level / 255`` correctly rounded to ``out_ty``: divided in float64 (Triton's float32
    ``/`` is an approximate division on GPUs, float64's is IEEE), then rounded through
    float32 as torch converts; for k/255 that equals the exactly rounded quotient."""
    unit = level.to(tl.float64) / 255.0
    if out_ty != tl.float64:
        unit = unit.to(tl.float32)
    return unit.to(out_ty)


@triton.jit
def _jpeg_reconstruct_kernel(
    luma_ptr,  # (B, rows_p, cols_p) uint8 decoded luma
    chroma_ptr,  # (B, 2, rows_p/2, cols_p/2) uint8 decoded chroma (unused for gray)
    out_ptr,  # (B, C, H, W) out: levels / 255
    height,  # H
    width,  # W
    rows_p,  # padded luma rows
    cols_p,  # padded luma columns
    total,  # B * H * W
    CHANNELS: tl.constexpr,
    BLOCK: tl.constexpr,
):
    n = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = n < total
    b = n // (height * width)
    r = (n // width) % height
    c = n % width
    y = tl.load(luma_ptr + (b * rows_p + r) * cols_p + c, mask=mask, other=0).to(tl.int32)
    plane = height * width
    base = b * CHANNELS * plane + r * width + c
    out_ty = out_ptr.dtype.element_ty
    if CHANNELS == 1:
        tl.store(out_ptr + base, _unit(y, out_ty), mask=mask)
    else:
        h = (height + 1) // 2
        w = (width + 1) // 2
        stride = cols_p // 2
        chroma_plane = rows_p // 2 * stride
        cb = _upsample(chroma_ptr + b * 2 * chroma_plane, stride, h, w, r, c, mask) - 128
        cr = _upsample(chroma_ptr + (b * 2 + 1) * chroma_plane, stride, h, w, r, c, mask) - 128
        red = y + ((_R_CR * cr + _HALF) >> _COLOR_BITS)
        green = y + ((_G_CB * cb + _G_CR * cr + _HALF) >> _COLOR_BITS)
        blue = y + ((_B_CB * cb + _HALF) >> _COLOR_BITS)
        tl.store(out_ptr + base, _unit(tl.minimum(tl.maximum(red, 0), 255), out_ty), mask=mask)
        tl.store(out_ptr + base + plane, _unit(tl.minimum(tl.maximum(green, 0), 255), out_ty), mask=mask)
        tl.store(out_ptr + base + 2 * plane, _unit(tl.minimum(tl.maximum(blue, 0), 255), out_ty), mask=mask)


def roundtrip(x: torch.Tensor, tables: torch.Tensor, dct: torch.Tensor) -> torch.Tensor:
    """JPEG round trip of contiguous :math:`(B, C, H, W)` images, C in {1, 3}.

    Args:
        x: images in [0, 1] (checked by the caller).
        tables: :math:`(2, 64)` int32 quantisation tables.
        dct: :math:`(2, 8, 8)` int32 islow matrices.

    Returns:
        :math:`(B, C, H, W)` levels ``k/255`` in the dtype of ``x``.
    """
    batch, channels, height, width = x.shape
    out = torch.empty_like(x)
    if x.numel() == 0:
        return out
    rows, cols = padded_size(height, width, channels)
    tables = tables.contiguous()
    dct = dct.contiguous()
    luma = torch.empty((batch, rows, cols), dtype=torch.uint8, device=x.device)
    plane_jobs = [(0, luma, tables[0], rows, cols, rows * cols)]
    chroma = luma
    if channels == 3:
        chroma = torch.empty((batch, 2, rows // 2, cols // 2), dtype=torch.uint8, device=x.device)
        for k in (1, 2):
            plane_jobs.append((k, chroma[:, k - 1], tables[1], rows // 2, cols // 2, 2 * (rows // 2) * (cols // 2)))
    for plane, buffer, table, plane_rows, plane_cols, stride in plane_jobs:
        total = batch * (plane_rows // 8) * (plane_cols // 8)
        _jpeg_code_blocks_kernel[(triton.cdiv(total, _BLOCKS),)](
            x, buffer, table, dct, height, width, plane_rows // 8, plane_cols // 8, total, stride,
            CHANNELS=channels, PLANE=plane, BLOCKS=_BLOCKS,
        )  # fmt: skip
    total = batch * height * width
    _jpeg_reconstruct_kernel[(triton.cdiv(total, _BLOCK),)](
        luma, chroma, out, height, width, rows, cols, total, CHANNELS=channels, BLOCK=_BLOCK
    )
    return out
