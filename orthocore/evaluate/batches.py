"""How every evaluation attacks its sample of images: in fixed batches, each batch with
random draws of its own, the batches shared out among the processes of a ``torchrun``
job and their outcomes gathered back in order.

Batch t (images ``t·b … (t+1)·b − 1`` of the sample) is attacked with the attack's
generator re-seeded to :func:`batch_seed` ``(seed, t)``. Its draws (random starts, input
diversity, Square's squares) therefore depend on the seed and on the batch alone, never
on the batches before it or on which process attacks it: process r takes the batches
t ≡ r (mod W), and the gathered outcomes equal those of one process exactly.

A randomized target (a defense drawing a fresh transformation per call) is asked for
its predictions under draw keys (:func:`predictions`: the attack's seed, the image's
place in the sample and its ε), so that every count is repeatable and the same on any
number of processes.

Before each round of W batches the processes agree whether to stop (SIGTERM,
:func:`orthocore.distributed.stop_requested`); an attack stopped midway raises
:class:`orthocore.interrupts.Interrupted` and keeps nothing of its batches, as its
stage is computed whole when the command runs again.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from torch import nn

from orthocore import distributed, draws, interrupts

# The scheme above, named in the study's stage keys: results drawn under an earlier scheme
# (one generator running through all batches) are recomputed, not mixed with these.
DRAWS = "per-batch-seed/1"


def batch_seed(seed: int, batch: int) -> int:
    """The seed of batch ``batch`` of an attack seeded ``seed``."""
    return seed * 1_000_003 + batch


def my_batches(count: int, batch_size: int) -> list[int]:
    """The batch numbers of a sample of ``count`` images that this process attacks."""
    world = distributed.world()
    return list(range(world.rank, -(-count // batch_size), world.size))


@torch.no_grad()
def predictions(model: nn.Module, images: Tensor, seed: int, indices: Tensor,
                step: int = draws.EVALUATION_STEP) -> Tensor:  # fmt: skip
    """The classes ``model`` gives ``images`` :math:`(E, b, C, H, W)` (the images
    ``indices`` :math:`(b,)`, each at ``E`` ε): :math:`(E, b)`. A randomized model draws
    each row under the key (``seed``, ``step``, image, ε index); the evaluations count
    adversarial images at :data:`~orthocore.draws.EVALUATION_STEP` and check clean ones
    at :data:`~orthocore.draws.CLEAN_STEP`."""
    count, batch = images.shape[:2]
    keys = draws.row_keys(seed, indices.cpu().repeat(count), step, draw=torch.arange(count).repeat_interleave(batch))
    with draws.keyed(keys):
        return model(images.flatten(0, 1)).argmax(1).view(count, batch)


def attack_sample(
    attack, seed: int, images: Tensor, labels: Tensor, batch_size: int,
    measure: Callable[[Tensor, Tensor, Tensor], Tensor], on_batch: Callable[[], object] | None = None,
) -> Tensor:
    """Runs ``attack`` over the sample, this process's batches only, and returns every
    image's outcome gathered from all processes.

    Args:
        attack: an attack object whose ``generator`` (a CPU ``torch.Generator``) it draws
            from; re-seeded before each batch.
        seed: the attack's seed (:func:`batch_seed`).
        images: :math:`(N, C, H, W)` the sample; labels: :math:`(N,)`.
        batch_size: images per batch.
        measure: ``measure(adversarial (E, b, C, H, W), labels (b,), indices (b,))`` → the
            per-image outcomes, :math:`(E, b, ...)` (e.g. whether each model was fooled,
            :func:`predictions`); ``indices`` are the images' places in the sample.
        on_batch: called after each batch (a progress bar's update).

    Returns:
        :math:`(E, N, ...)` on the CPU: every image's outcome, in the sample's order.
    """
    if attack.generator is None:
        raise ValueError("attack: needs its own generator (generator=torch.Generator()) to seed each batch")
    outcomes = {}
    mine, world = my_batches(len(labels), batch_size), distributed.world()
    rounds = -(-len(labels) // (batch_size * world.size))  # the same on every process, as the stop check needs
    for round_ in range(rounds):
        if distributed.stop_requested():  # SIGTERM: the finished stages are saved, this one is attacked again
            raise interrupts.Interrupted(f"stopped by SIGTERM after {round_ * world.size} of "
                                         f"{-(-len(labels) // batch_size)} attack batches")  # fmt: skip
        if round_ >= len(mine):
            continue
        batch = mine[round_]
        attack.generator.manual_seed(batch_seed(seed, batch))
        part = slice(batch * batch_size, (batch + 1) * batch_size)
        adversarial = attack(images[part], labels[part])
        indices = torch.arange(len(labels))[part]
        with torch.no_grad():
            outcomes[batch] = measure(adversarial, labels[part], indices).cpu()
        if on_batch is not None:
            on_batch()
    gathered = {batch: value for share in distributed.gather(outcomes) for batch, value in share.items()}
    return torch.cat([gathered[batch] for batch in sorted(gathered)], dim=1)
