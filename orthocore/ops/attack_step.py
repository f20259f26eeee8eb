"""``attack_step``: one update of an iterative gradient attack, fused, per sample.

For a batch flattened to :math:`(B, D)` — the current adversarial images ``adv``, the
loss gradient ``grad`` at ``adv``, the clean images ``clean`` — and per-sample step
sizes ``step`` and radii ``eps`` (both :math:`(B,)`), one step is:

1. momentum (optional, MI-FGSM, Dong et al. 2018): ``m ← grad / mean|grad| + decay·m``
   and the direction source is ``m``; otherwise it is ``grad``;
2. direction: ``sign(·)`` for L∞, ``· / ‖·‖₂`` for L2;
3. ``x ← adv + step·direction``;
4. projection onto the ε-ball around ``clean``: ``clean + clamp(x − clean, −ε, ε)`` for
   L∞, ``clean + (x − clean)·min(1, ε/‖x − clean‖₂)`` for L2;
5. clamp to ``[0, 1]``.

A row whose gradient (or momentum sum, or perturbation) is all zeros has no direction
(or needs no projection): it never produces NaN. The fused kernels compute the per-row
sums (``Σ|grad|``, ``‖direction‖²``, ``‖x − clean‖²``) and the update in one kernel
launch that streams each row from memory; the order of operations matches the
reference (and torchattacks), so float64 results agree to rounding.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from orthocore.checks import (
    check_choice,
    check_finite,
    check_number,
    check_same,
    check_shape,
    check_tensor,
    check_unit_range,
)
from orthocore.dispatch import Draw, OpBackends, Sample
from orthocore.formulas import accumulate_dtype
from orthocore.ops._autograd import runs_eagerly

_OP = "attack_step"
NORMS = ("inf", "2")


def _flat(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], math.prod(x.shape[1:])).contiguous()  # (B, D)


def _safe_scale(numerator: Tensor, denominator: Tensor) -> Tensor:
    """``numerator / denominator`` where the denominator is positive, else 0."""
    positive = denominator > 0
    return torch.where(positive, numerator / torch.where(positive, denominator, 1), 0)


# --------------------------------------------------------------------------- reference
def _reference(
    adv: Tensor, grad: Tensor, clean: Tensor, momentum: Tensor | None, step: Tensor, eps: Tensor, l2: bool, decay: float
) -> tuple[Tensor, Tensor | None]:
    """The step on contiguous :math:`(B, D)` rows; ``step``/``eps`` :math:`(B,)`."""
    acc = accumulate_dtype(adv.dtype)
    g = grad.to(acc)
    new_momentum = None
    if momentum is not None:
        l1 = g.abs().mean(1, keepdim=True)  # (B, 1)
        positive = l1 > 0
        g = torch.where(positive, g / torch.where(positive, l1, 1), 0) + momentum.to(acc) * decay
        new_momentum = g.to(momentum.dtype)
    if l2:
        norm = torch.linalg.vector_norm(g, dim=1, keepdim=True)  # (B, 1)
        direction = torch.where(norm > 0, g / torch.where(norm > 0, norm, 1), 0)
    else:
        direction = g.sign()
    x0 = clean.to(acc)
    step, eps = step.to(acc)[:, None], eps.to(acc)[:, None]  # (B, 1)
    delta = adv.to(acc) + step * direction - x0
    if l2:
        norm = torch.linalg.vector_norm(delta, dim=1, keepdim=True)  # (B, 1)
        delta = delta * torch.clamp(_safe_scale(eps, norm) + (norm <= 0), max=1)
    else:
        delta = torch.clamp(delta, -eps, eps)
    return torch.clamp(x0 + delta, 0, 1).to(adv.dtype), new_momentum


def attack_step_reference(
    adv: Tensor,
    grad: Tensor,
    clean: Tensor,
    step: Tensor,
    eps: Tensor,
    *,
    norm: str = "inf",
    momentum: Tensor | None = None,
    decay: float = 1.0,
) -> tuple[Tensor, Tensor | None]:
    """Plain-PyTorch attack step; the oracle of the fused op (same arguments as
    :func:`attack_step`)."""
    _check_inputs(adv, grad, clean, momentum, step, eps, norm, decay)
    out, new_momentum = _reference(
        _flat(adv), _flat(grad), _flat(clean), None if momentum is None else _flat(momentum),
        _per_sample(step, adv), _per_sample(eps, adv), norm == "2", decay,
    )  # fmt: skip
    return out.view(adv.shape), None if new_momentum is None else new_momentum.view(adv.shape)


# ---------------------------------------------------------------------- compiled backends
def _compiled(adv, grad, clean, momentum, step, eps, l2, decay):
    out, new_momentum = torch.ops.orthocore.attack_step_fwd(adv, grad, clean, momentum, step, eps, l2, decay)
    return out, (new_momentum if momentum is not None else None)


def _triton(adv, grad, clean, momentum, step, eps, l2, decay):
    from orthocore.kernels import attack_step as kernels

    return kernels.attack_step(adv, grad, clean, momentum, step, eps, l2, decay)


def _sample(device: torch.device, draw: Draw) -> Sample:
    images, grad = draw(8, 3, 32, 32, rand=torch.rand), draw(8, 3, 32, 32)
    step, eps = torch.full((8,), 0.01, device=device), torch.full((8,), 0.03, device=device)
    return Sample("attack_step, 8 x 3x32x32", lambda: attack_step(images, grad, images, step, eps)[:1], 1e-6)


STEP = OpBackends(_OP, {"reference": _reference, "cpu": _compiled, "cuda": _compiled, "triton": _triton},
                  sample=_sample)  # fmt: skip


# ------------------------------------------------------------------------- custom op
def _per_sample(value: Tensor, like: Tensor) -> Tensor:
    """A :math:`(B,)` per-sample tensor in the accumulation dtype of ``like``."""
    return value.to(device=like.device, dtype=accumulate_dtype(like.dtype)).contiguous()


def _check_inputs(adv, grad, clean, momentum, step, eps, norm, decay) -> None:
    tensors = {"adv": adv, "grad": grad, "clean": clean, "step": step, "eps": eps, "momentum": momentum}
    for name, x in tensors.items():
        if x is not None or name != "momentum":
            check_tensor(x, name, floating=True, where=_OP)
    rows = check_shape(adv, "adv", ["B", "*"], where=_OP)["B"]
    for name in ("grad", "clean", "momentum"):
        if tensors[name] is not None:
            check_same(adv, tensors[name], ("adv", name), where=_OP)
    for name in ("step", "eps"):
        check_shape(tensors[name], name, [rows], where=_OP)  # one value per sample
        check_finite(tensors[name], name, low=0, where=_OP)  # a negative ε would flip the projection
    check_finite(grad, "grad", where=_OP)  # NaN would pass through the sign and the projection unnoticed
    for name in ("adv", "clean"):  # images: backends would clamp a NaN differently
        check_unit_range(tensors[name], name, where=_OP)
    if momentum is not None:
        check_finite(momentum, "momentum", where=_OP)
    check_choice(norm, "norm", NORMS, where=_OP)
    check_number(decay, "decay", low=0, where=_OP)


def _attack_step(
    adv: Tensor, grad: Tensor, clean: Tensor, momentum: Tensor | None, step: Tensor, eps: Tensor, l2: bool, decay: float
) -> tuple[Tensor, Tensor]:
    step, eps = _per_sample(step, adv), _per_sample(eps, adv)
    flat_momentum = None if momentum is None else _flat(momentum)
    out, new_momentum = STEP(adv.device)(_flat(adv), _flat(grad), _flat(clean), flat_momentum, step, eps, l2, decay)
    out = out.view(adv.shape)
    return out, (adv.new_empty((0,)) if new_momentum is None else new_momentum.view(adv.shape))


_attack_step_op = torch.library.custom_op("orthocore::attack_step", _attack_step, mutates_args=())


@_attack_step_op.register_fake
def _(adv, grad, clean, momentum, step, eps, l2, decay):
    return torch.empty_like(adv), (adv.new_empty((0,)) if momentum is None else torch.empty_like(momentum))


def attack_step(
    adv: Tensor,
    grad: Tensor,
    clean: Tensor,
    step: Tensor,
    eps: Tensor,
    *,
    norm: str = "inf",
    momentum: Tensor | None = None,
    decay: float = 1.0,
) -> tuple[Tensor, Tensor | None]:
    """One fused step of a gradient attack, with a step size and ε per sample.

    Not differentiable: attacks call it outside autograd.

    Args:
        adv: :math:`(B, *)` current adversarial images, range [0, 1].
        grad: :math:`(B, *)` gradient of the attack loss at ``adv`` (ascent direction).
        clean: :math:`(B, *)` clean images the perturbation is measured from, range [0, 1].
        step: :math:`(B,)` step size per sample.
        eps: :math:`(B,)` radius of the ε-ball per sample.
        norm: ``"inf"`` (sign step, box projection) or ``"2"`` (unit-L2 step, ball projection).
        momentum: :math:`(B, *)` accumulated momentum (MI-FGSM), or ``None`` for none.
        decay: momentum decay μ (used only with ``momentum``).

    Returns:
        ``(new_adv, new_momentum)``: :math:`(B, *)` images in [0, 1] within ε of
        ``clean``, and the updated momentum (``None`` when ``momentum`` is ``None``).

    Examples:
        >>> import torch
        >>> from orthocore.ops import attack_step
        >>> x = torch.full((1, 4), 0.5)
        >>> attack_step(x, torch.tensor([[1.0, -2.0, 0.0, 3.0]]), x, torch.tensor([0.1]), torch.tensor([0.05]))[0]
        tensor([[0.5500, 0.4500, 0.5000, 0.5500]])
    """
    _check_inputs(adv, grad, clean, momentum, step, eps, norm, decay)
    inputs = (adv, grad, clean, momentum, step, eps)
    step_of = _attack_step if runs_eagerly(*inputs) else _attack_step_op  # see orthocore.ops._autograd
    out, new_momentum = step_of(*inputs, norm == "2", float(decay))
    return out, (new_momentum if momentum is not None else None)
