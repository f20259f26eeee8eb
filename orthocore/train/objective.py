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
class StepWeights:
    """Each sample's weight in one process's share of a step spread over several processes.

    Under ``DistributedDataParallel`` every process holds part of the global batch, and
    DDP averages the processes' parameter gradients. Weighting each process's per-sample
    terms by ``world_size / global count`` (0 for a sample the sampler repeated to even
    out the shards) makes that average the gradient of the single-process loss: the mean
    cross-entropy over the global batch plus λ times the mean penalty over its penalty
    samples, whatever share each process holds.

    Attributes:
        ce: :math:`(B,)` weights of the per-sample cross-entropies (summed).
        penalty: :math:`(B',)` weights of the penalty's samples (each sample's penalty
            averaged over the references, then summed).
    """

    ce: Tensor
    penalty: Tensor


@dataclass
class StepLoss:
    """One batch's objective.

    Attributes:
        loss: scalar to minimise (carries the graph).
        ce: detached mean cross-entropy (with weights: over the samples of non-zero weight).
        delta: detached :math:`(R, B')` δ to each reference, or None when λ = 0 (and
            :math:`(R, 0)` for a weighted step without penalty samples).
    """

    loss: Tensor
    ce: Tensor
    delta: Tensor | None


def orthogonal_loss(
    model: nn.Module, x: Tensor, y: Tensor, reference_grads: Tensor | None, lam: float, penalty: str = "abs",
    rows: Tensor | None = None, weights: StepWeights | None = None,
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
        weights: per-sample weights in place of the means (a process's share of a
            distributed step, :class:`StepWeights`); with ``rows`` of length 0 the step
            has no penalty term.
    """
    if lam == 0:
        return _cross_entropy(model(x), y, weights)
    if reference_grads is None:
        raise ValueError("reference_grads: λ > 0 needs the reference models' input gradients")
    if rows is None:
        grads, logits = input_gradients(model, x, y)
        step = _cross_entropy(logits, y, weights)
    else:
        step = _cross_entropy(model(x), y, weights)
        if len(rows) == 0:  # this process holds none of the penalty's samples
            return StepLoss(step.loss, step.ce, x.new_zeros(len(reference_grads), 0))
        grads, _ = input_gradients(model, x[rows], y[rows], update_buffers=False)
    if reference_grads.shape[1:] != grads.shape:
        raise ValueError(f"reference_grads: expected (R, {', '.join(map(str, grads.shape))}) for the penalty's "
                         f"samples, got {tuple(reference_grads.shape)}")  # fmt: skip
    delta = torch.stack([normalized_dot(ref.to(grads.dtype), grads) for ref in reference_grads])  # (R, B')
    if weights is None:
        penalty_term = PENALTIES[penalty](delta).mean()
    else:
        penalty_term = (PENALTIES[penalty](delta).mean(0) * weights.penalty.to(delta.dtype)).sum()
    return StepLoss(step.loss + lam * penalty_term, step.ce, delta.detach())


def _cross_entropy(logits: Tensor, y: Tensor, weights: StepWeights | None) -> StepLoss:
    """The cross-entropy term: the batch mean, or the weighted sum of :class:`StepWeights`."""
    if weights is None:
        ce = F.cross_entropy(logits, y)
        return StepLoss(ce, ce.detach(), None)
    per_sample = F.cross_entropy(logits, y, reduction="none")
    counted = (weights.ce > 0).to(per_sample.dtype)
    shown = (per_sample.detach() * counted).sum() / counted.sum().clamp(min=1)  # no host sync
    return StepLoss((per_sample * weights.ce.to(per_sample.dtype)).sum(), shown, None)
