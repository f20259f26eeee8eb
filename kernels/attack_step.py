"""Triton kernel of ``orthocore::attack_step`` (math in orthocore/ops/attack_step.py).

One program per row, the structure of the C++ kernels: up to three reduction loops over
the row (``Σ|grad|`` for momentum, ``‖direction‖²`` and ``‖x − clean‖²`` for L2), then
one loop that writes the new images (and momentum). One launch per step.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

_BLOCK = 1024


@triton.jit
def _direction_source(grad_ptr, m_ptr, offsets, mask, l1_mean, decay, HAS_MOMENTUM: tl.constexpr):
    """The raw gradient, or grad / mean|grad| + decay·m (0 gradient term for a zero row)."""
    g = tl.load(grad_ptr + offsets, mask=mask, other=0.0).to(l1_mean.dtype)
    if HAS_MOMENTUM:
        m = tl.load(m_ptr + offsets, mask=mask, other=0.0).to(g.dtype)
        g = tl.where(l1_mean > 0, g / tl.where(l1_mean > 0, l1_mean, 1.0), 0.0) + m * decay
    return g


@triton.jit
def _step_direction(d, dir_norm, L2: tl.constexpr):
    if L2:
        return tl.where(dir_norm > 0, d / tl.where(dir_norm > 0, dir_norm, 1.0), 0.0)
    return tl.where(d > 0, 1.0, tl.where(d < 0, -1.0, 0.0)).to(d.dtype)


@triton.jit
def _attack_step_kernel(
    adv_ptr,  # (B, D) current adversarial images
    grad_ptr,  # (B, D) loss gradient at adv
    clean_ptr,  # (B, D) clean images
    m_ptr,  # (B, D) momentum (unused unless HAS_MOMENTUM)
    step_ptr,  # (B,) step size per row (accumulation dtype)
    eps_ptr,  # (B,) radius per row (accumulation dtype)
    out_ptr,  # (B, D) out: new adversarial images
    new_m_ptr,  # (B, D) out: new momentum (unused unless HAS_MOMENTUM)
    cols,  # D
    decay_ptr,  # (1,) momentum decay (accumulation dtype)
    HAS_MOMENTUM: tl.constexpr,
    L2: tl.constexpr,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    base = row * cols
    step = tl.load(step_ptr + row)
    eps = tl.load(eps_ptr + row)
    acc_dtype = step_ptr.dtype.element_ty
    decay = tl.load(decay_ptr)
    l1_mean = tl.zeros((), dtype=acc_dtype)
    if HAS_MOMENTUM:
        l1 = tl.zeros((BLOCK,), dtype=acc_dtype)
        for start in range(0, cols, BLOCK):
            cols_here = start + tl.arange(0, BLOCK)
            mask = cols_here < cols
            l1 += tl.abs(tl.load(grad_ptr + base + cols_here, mask=mask, other=0.0).to(acc_dtype))
        l1_mean = tl.sum(l1, axis=0) / cols
    dir_norm = tl.zeros((), dtype=acc_dtype)
    factor = tl.full((), 1.0, dtype=acc_dtype)
    if L2:
        sq = tl.zeros((BLOCK,), dtype=acc_dtype)
        for start in range(0, cols, BLOCK):
            cols_here = start + tl.arange(0, BLOCK)
            mask = cols_here < cols
            d = _direction_source(grad_ptr, m_ptr, base + cols_here, mask, l1_mean, decay, HAS_MOMENTUM)
            sq += d * d
        dir_norm = tl.sqrt(tl.sum(sq, axis=0))
        delta_sq = tl.zeros((BLOCK,), dtype=acc_dtype)
        for start in range(0, cols, BLOCK):
            cols_here = start + tl.arange(0, BLOCK)
            mask = cols_here < cols
            d = _direction_source(grad_ptr, m_ptr, base + cols_here, mask, l1_mean, decay, HAS_MOMENTUM)
            x = tl.load(adv_ptr + base + cols_here, mask=mask, other=0.0).to(acc_dtype)
            c = tl.load(clean_ptr + base + cols_here, mask=mask, other=0.0).to(acc_dtype)
            delta = x + step * _step_direction(d, dir_norm, True) - c
            delta_sq += tl.where(mask, delta * delta, 0.0)
        delta_norm = tl.sqrt(tl.sum(delta_sq, axis=0))
        factor = tl.where(delta_norm > 0, tl.minimum(eps / tl.where(delta_norm > 0, delta_norm, 1.0), 1.0), 1.0)
    for start in range(0, cols, BLOCK):
        cols_here = start + tl.arange(0, BLOCK)
        mask = cols_here < cols
        d = _direction_source(grad_ptr, m_ptr, base + cols_here, mask, l1_mean, decay, HAS_MOMENTUM)
        if HAS_MOMENTUM:
            tl.store(new_m_ptr + base + cols_here, d.to(new_m_ptr.dtype.element_ty), mask=mask)
        x = tl.load(adv_ptr + base + cols_here, mask=mask, other=0.0).to(acc_dtype)
        c = tl.load(clean_ptr + base + cols_here, mask=mask, other=0.0).to(acc_dtype)
        delta = x + step * _step_direction(d, dir_norm, L2) - c
        if L2:
            delta = delta * factor
        else:
            delta = tl.minimum(tl.maximum(delta, -eps), eps)
        result = tl.minimum(tl.maximum(c + delta, 0.0), 1.0)
        tl.store(out_ptr + base + cols_here, result.to(out_ptr.dtype.element_ty), mask=mask)


def attack_step(
    adv: torch.Tensor,
    grad: torch.Tensor,
    clean: torch.Tensor,
    momentum: torch.Tensor | None,
    step: torch.Tensor,
    eps: torch.Tensor,
    l2: bool,
    decay: float,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One attack step on contiguous :math:`(B, D)` rows; ``step``/``eps`` :math:`(B,)`
    in the accumulation dtype.

    Returns:
        ``(out, new_momentum)``: :math:`(B, D)` each; ``new_momentum`` is ``None``
        without ``momentum``.
    """
    rows, cols = adv.shape
    out = torch.empty_like(adv)
    new_momentum = torch.empty_like(adv) if momentum is not None else None
    if rows == 0 or cols == 0:
        return out, new_momentum
    has_momentum = momentum is not None
    _attack_step_kernel[(rows,)](
        adv, grad, clean, momentum if has_momentum else adv, step, eps,
        out, new_momentum if has_momentum else out, cols, step.new_full((1,), decay),
        HAS_MOMENTUM=has_momentum, L2=l2, BLOCK=_BLOCK,
    )  # fmt: skip
    return out, new_momentum
