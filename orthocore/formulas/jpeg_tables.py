"""The constants of libjpeg's baseline codec, derived once in Python for every backend.

* :func:`quant_tables`: the Annex K luminance and chrominance tables of the JPEG
  standard (ITU-T T.81), scaled by quality exactly as libjpeg's ``jpeg_quality_scaling``
  and ``jpeg_add_quant_table`` with ``force_baseline`` (entries clamped to 1..255).
* :data:`FDCT_MATRIX`, :data:`IDCT_MATRIX`: libjpeg's accurate integer DCT ("islow",
  Loeffler–Ligtenberg–Moschytz with 13-bit constants) written as integer matrices.
  Each 1-D pass of ``jpeg_fdct_islow`` / ``jpeg_idct_islow`` is an integer linear map
  followed by a rounding right shift; the matrices are that linear map, obtained by
  running the butterflies below on the unit vectors. Applying
  ``(M @ v + 2**(s-1)) >> s`` with the shifts below reproduces libjpeg bit for bit.
* The fixed-point colour-conversion constants of ``jccolor.c`` / ``jdcolor.c`` (JFIF
  YCbCr, 16 fractional bits).

* :func:`padded_size`: the plane size after padding to whole MCUs.

The kernels (C++, CUDA, Triton) receive the tables and matrices as tensors, so these
numbers live in one place; the Triton kernels and :mod:`orthocore.ops.jpeg` both import
this module.
"""

from __future__ import annotations

import functools

import torch

CONST_BITS = 13
PASS1_BITS = 2
# Rounding right shifts after the first and second 1-D pass of each transform.
FDCT_SHIFTS = (CONST_BITS - PASS1_BITS, CONST_BITS + PASS1_BITS)
IDCT_SHIFTS = (CONST_BITS - PASS1_BITS, CONST_BITS + PASS1_BITS + 3)

# Annex K, Tables K.1 and K.2, in natural (row-major) order.
LUMINANCE_TABLE = (
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip
CHROMINANCE_TABLE = (
    17, 18, 24, 47, 99, 99, 99, 99,
    18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99,
) + (99,) * 32  # fmt: skip


def _fix(value: float, bits: int) -> int:
    """libjpeg's ``FIX(x)``: ``x`` in fixed point with ``bits`` fractional bits."""
    return int(value * (1 << bits) + 0.5)


# Fixed-point constants of the integer DCT (CONST_BITS fractional bits).
_C = {name: _fix(value, CONST_BITS) for name, value in {
    "0.298631336": 0.298631336, "0.390180644": 0.390180644, "0.541196100": 0.541196100,
    "0.765366865": 0.765366865, "0.899976223": 0.899976223, "1.175875602": 1.175875602,
    "1.501321110": 1.501321110, "1.847759065": 1.847759065, "1.961570560": 1.961570560,
    "2.053119869": 2.053119869, "2.562915447": 2.562915447, "3.072711026": 3.072711026,
}.items()}  # fmt: skip


def _odd_part(a, b, c, d):
    """The shared odd-part rotation of the islow DCT and IDCT (12-multiply variant).

    Returns the four odd outputs (before descaling) for the inputs that the forward
    transform calls ``tmp4..tmp7`` and the inverse calls ``tmp0..tmp3`` (same order).
    """
    z1, z2, z3, z4 = a + d, b + c, a + c, b + d
    z5 = (z3 + z4) * _C["1.175875602"]
    z1 = z1 * -_C["0.899976223"]
    z2 = z2 * -_C["2.562915447"]
    z3 = z3 * -_C["1.961570560"] + z5
    z4 = z4 * -_C["0.390180644"] + z5
    return (
        a * _C["0.298631336"] + z1 + z3,
        b * _C["2.053119869"] + z2 + z4,
        c * _C["3.072711026"] + z2 + z3,
        d * _C["1.501321110"] + z1 + z4,
    )


def _fdct_butterfly(v):
    """One 1-D pass of ``jpeg_fdct_islow`` on 8 inputs, outputs before the shift."""
    t0, t7 = v[0] + v[7], v[0] - v[7]
    t1, t6 = v[1] + v[6], v[1] - v[6]
    t2, t5 = v[2] + v[5], v[2] - v[5]
    t3, t4 = v[3] + v[4], v[3] - v[4]
    t10, t13, t11, t12 = t0 + t3, t0 - t3, t1 + t2, t1 - t2
    z1 = (t12 + t13) * _C["0.541196100"]
    o7, o5, o3, o1 = _odd_part(t4, t5, t6, t7)
    return [
        (t10 + t11) * (1 << CONST_BITS),
        o1,
        z1 + t13 * _C["0.765366865"],
        o3,
        (t10 - t11) * (1 << CONST_BITS),
        o5,
        z1 - t12 * _C["1.847759065"],
        o7,
    ]


def _idct_butterfly(v):
    """One 1-D pass of ``jpeg_idct_islow`` on 8 inputs, outputs before the shift."""
    z1 = (v[2] + v[6]) * _C["0.541196100"]
    t2 = z1 - v[6] * _C["1.847759065"]
    t3 = z1 + v[2] * _C["0.765366865"]
    t0 = (v[0] + v[4]) * (1 << CONST_BITS)
    t1 = (v[0] - v[4]) * (1 << CONST_BITS)
    t10, t13, t11, t12 = t0 + t3, t0 - t3, t1 + t2, t1 - t2
    o0, o1, o2, o3 = _odd_part(v[7], v[5], v[3], v[1])
    return [t10 + o3, t11 + o2, t12 + o1, t13 + o0, t13 - o0, t12 - o1, t11 - o2, t10 - o3]


def _as_matrix(butterfly) -> torch.Tensor:
    units = [[int(i == k) for i in range(8)] for k in range(8)]
    columns = [butterfly(unit) for unit in units]  # columns[k][u] = M[u, k]
    return torch.tensor([[columns[k][u] for k in range(8)] for u in range(8)], dtype=torch.int32)


FDCT_MATRIX = _as_matrix(_fdct_butterfly)  # (8, 8): pass output u from input k
IDCT_MATRIX = _as_matrix(_idct_butterfly)  # (8, 8)

# JFIF colour conversion (jccolor.c, jdcolor.c), 16 fractional bits.
COLOR_BITS = 16
RGB_TO_YCC = (
    (_fix(0.29900, 16), _fix(0.58700, 16), _fix(0.11400, 16)),
    (-_fix(0.16874, 16), -_fix(0.33126, 16), _fix(0.50000, 16)),
    (_fix(0.50000, 16), -_fix(0.41869, 16), -_fix(0.08131, 16)),
)
YCC_TO_RGB = (_fix(1.40200, 16), -_fix(0.34414, 16), -_fix(0.71414, 16), _fix(1.77200, 16))


def quality_scale(quality: int) -> int:
    """libjpeg's ``jpeg_quality_scaling``: percentage applied to the base tables."""
    return 5000 // quality if quality < 50 else 200 - 2 * quality


@functools.cache
def _quant_tables_cpu(quality: int) -> torch.Tensor:
    scale = quality_scale(quality)
    rows = [[min(max((base * scale + 50) // 100, 1), 255) for base in table]
            for table in (LUMINANCE_TABLE, CHROMINANCE_TABLE)]  # fmt: skip
    return torch.tensor(rows, dtype=torch.int32)


def quant_tables(quality: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Luminance and chrominance quantisation tables for a quality in 1..100.

    Returns:
        :math:`(2, 64)` int32, natural order: row 0 luminance, row 1 chrominance.

    Examples:
        >>> quant_tables(50)[0, :4].tolist()
        [16, 11, 10, 16]
    """
    return _quant_tables_cpu(quality).to(device)


def dct_matrices(device: torch.device | str = "cpu") -> torch.Tensor:
    """:math:`(2, 8, 8)` int32: the forward and inverse islow matrices."""
    return torch.stack((FDCT_MATRIX, IDCT_MATRIX)).to(device)


def padded_size(height: int, width: int, channels: int) -> tuple[int, int]:
    """Size of the luminance plane after padding to whole MCUs (16×16 RGB, 8×8 gray)."""
    mcu = 16 if channels == 3 else 8
    return -(-height // mcu) * mcu, -(-width // mcu) * mcu
