"""How an epoch's global batches are split among the processes of a distributed run.

The data order is PyTorch's ``DistributedSampler``: one seeded permutation per epoch
(``seed · 1000003 + epoch``, the order a one-process run has always used), padded by
repeating its first samples to a multiple of the world size W, and dealt out in turn:
rank r takes positions r, r + W, r + 2W, … With a per-process batch of b = B / W,
process r's t-th batch is therefore its share of the one-process run's t-th batch of B,
and the W shares together are exactly that batch. A sample repeated by the padding
(only in the last step, and only when W does not divide the training set) gets weight 0.

The run's state (``state.pt``) records the global batch and the seed, never a process's
position, so a run resumes on any number of processes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import DistributedSampler

from orthocore.distributed import World
from orthocore.train.objective import StepWeights


def epoch_sampler(dataset, seed: int, epoch: int, world: World) -> DistributedSampler:
    """The sampler of this process's share of epoch ``epoch`` (every process gets the same
    number of samples)."""
    sampler = DistributedSampler(dataset, num_replicas=world.size, rank=world.rank, shuffle=True,
                                 seed=seed * 1_000_003, drop_last=False)  # fmt: skip
    sampler.set_epoch(epoch)
    return sampler


def epoch_order(seed: int, epoch: int, size: int) -> list[int]:
    """The order in which epoch ``epoch`` visits the ``size`` training samples in one
    process: a permutation drawn from its own generator, so that it does not depend on
    anything else the run drew (a resumed run replays it)."""
    return list(epoch_sampler(range(size), seed, epoch, World()))


@dataclass(frozen=True)
class StepShare:
    """This process's part of one global step.

    Attributes:
        global_count: the samples of the global step that count (the one-process batch).
        counted: :math:`(b,)` bool, False for a sample the sampler repeated as padding.
        world: the processes.
    """

    global_count: int
    counted: Tensor
    world: World

    def rows(self, global_rows: Tensor | None) -> Tensor | None:
        """The local indices of the penalty's sub-batch rows ``global_rows`` (positions in
        the global step, as a one-process run draws them) that this process holds."""
        if global_rows is None or self.world.size == 1:
            return global_rows
        mine = global_rows[global_rows % self.world.size == self.world.rank]
        return torch.div(mine, self.world.size, rounding_mode="floor")

    def weights(self, global_rows: Tensor | None) -> StepWeights:
        """The per-sample weights that make DDP's average of the processes' gradients the
        one-process step's gradient (see :class:`orthocore.train.objective.StepWeights`)."""
        ce = self.counted.double() * (self.world.size / self.global_count)
        if global_rows is None:
            return StepWeights(ce=ce, penalty=ce)
        local = self.rows(global_rows)
        return StepWeights(ce=ce, penalty=torch.full((len(local),), self.world.size / len(global_rows), dtype=torch.float64))


def step_share(step: int, local_size: int, per_process_batch: int, dataset_size: int, world: World) -> StepShare:
    """The share of global step ``step`` held by this process, whose batch has
    ``local_size`` samples (``per_process_batch`` except in the last step).

    Local sample j sits at position ``rank + W·(step·b + j)`` of the padded epoch order.
    """
    start = step * per_process_batch * world.size
    positions = world.rank + world.size * (step * per_process_batch + torch.arange(local_size))
    global_count = min(dataset_size, start + world.size * local_size) - start
    return StepShare(global_count=global_count, counted=positions < dataset_size, world=world)
