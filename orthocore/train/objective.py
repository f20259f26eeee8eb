"""The orthogonal training objective of Eq. 3: CE + λ · mean penalty(δ(g_ref, g)).

λ guidance (digits, small CNN, Adam 1e-3, batch 64, ``abs`` penalty, from scratch, against
a reference at 97.2 % whose independently trained ordinary twin has mean |δ| ≈ 0.8):

    λ = 1 (batch 32), 30 epochs: 97.5 % accuracy, mean |δ| 0.054
    λ = 2–3, 30–40 epochs: 96.9–98.0 %,      mean |δ| 0.032–0.042
    λ = 5–10, 20 epochs:   86–96 % (still climbing), mean |δ| 0.030–0.038
    λ = 30:                accuracy collapsed to about 20 %

Larger λ buys little extra orthogonality and slows learning, because the penalty's
gradient dominates while the cross-entropy's is still small. Start at λ = 1–3, give the
model more epochs than an ordinary one, and raise λ only while validation accuracy holds.
The paper's λ = 30 (CIFAR-10, Table I) was tuned for its models and schedule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from orthocore.gradients import input_gradients
from orthocore.ops import normalized_dot

PENALTIES: dict[str, Callable[[Tensor], Tensor]] = {
    "abs": torch.abs,  # |δ| → 0: orthogonal (the paper's tables); the default
    "square": torch.square,  # δ² → 0: orthogonal, gentler near 0
    "signed": lambda delta: delta,  # δ → -1: Eq. 3 read literally (anti-aligned, not orthogonal)
}


@dataclass
class StepLoss:
    """One batch's objective.

    Attributes:
        loss: scalar to minimise (carries the graph).
        ce: detached mean cross-entropy.
        delta: detached :math:`(R, B)` δ to each reference, or None when λ = 0.
    """

    loss: Tensor
    ce: Tensor
    delta: Tensor | None


def orthogonal_loss(
    model: nn.Module, x: Tensor, y: Tensor, reference_grads: Tensor | None, lam: float, penalty: str = "abs",
    rows: Tensor | None = None,
) -> StepLoss:
    """CE + λ · mean over references and samples of ``penalty(δ)``, differentiable in the
    model's parameters including the second-order term through the input gradient.

    With λ = 0 this is a plain forward and cross-entropy (no input gradient is taken):
    ordinary training.

    The sub-batch penalty (``rows``): the cross-entropy is the whole batch's, from an
    ordinary forward (which alone updates BatchNorm's running statistics), and δ is
    taken on the k samples ``rows`` selects, in a forward and double backward of their
    own that normalise with those k samples' batch statistics. Its cost is that of an
    ordinary step plus an orthogonal step on k samples.

    Args:
        model: the model being trained (train mode: see :mod:`orthocore.gradients` on
            BatchNorm).
        x: :math:`(B, C, H, W)` images in [0, 1].
        y: :math:`(B,)` labels.
        reference_grads: :math:`(R, B', C, H, W)` input gradients of R frozen references
            for the samples the penalty is taken on (B' = B, or k with ``rows``).
        lam: λ ≥ 0.
        penalty: a key of :data:`PENALTIES`.
        rows: :math:`(k,)` indices into the batch of the samples the penalty is taken on;
            None takes it on the whole batch from the one forward.
    """
    if lam == 0:
        ce = F.cross_entropy(model(x), y)
        return StepLoss(ce, ce.detach(), None)
    if reference_grads is None:
        raise ValueError("reference_grads: λ > 0 needs the reference models' input gradients")
    if rows is None:
        grads, logits = input_gradients(model, x, y)
        ce = F.cross_entropy(logits, y)
    else:
        ce = F.cross_entropy(model(x), y)
        grads, _ = input_gradients(model, x[rows], y[rows], update_buffers=False)
    if reference_grads.shape[1:] != grads.shape:
        raise ValueError(f"reference_grads: expected (R, {', '.join(map(str, grads.shape))}) for the penalty's "
                         f"samples, got {tuple(reference_grads.shape)}")  # fmt: skip
    delta = torch.stack([normalized_dot(ref.to(grads.dtype), grads) for ref in reference_grads])  # (R, B')
    loss = ce + lam * PENALTIES[penalty](delta).mean()
    return StepLoss(loss, ce.detach(), delta.detach())
