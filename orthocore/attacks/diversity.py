"""Input diversity (Xie et al., "Improving Transferability of Adversarial Examples with
Input Diversity", CVPR 2019): with probability ``p`` an image is resized to a random
smaller size and zero-padded back to its own size at a random offset.

The random choices are drawn per image and per step, before the attack runs (a
:class:`DiversityPlan`), so the result does not depend on how the batch is chunked and
image ``b`` sees the same transforms at every ε of a sweep. Keeping the output size
(shrink-and-pad, as in torchattacks) keeps models with fixed input sizes usable.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclasses.dataclass(frozen=True)
class DiversityPlan:
    """Per step and image: whether to transform, the resized (h, w), the top-left offset.

    All tensors are CPU int64 of shape :math:`(S, B)`.
    """

    apply: Tensor
    height: Tensor
    width: Tensor
    top: Tensor
    left: Tensor

    @staticmethod
    def draw(steps: int, batch: int, size: tuple[int, int], prob: float, resize_rate: float, generator):
        """Draws the transforms of ``steps`` steps for ``batch`` images of ``size`` (H, W)."""
        shape = (steps, batch)
        apply = torch.rand(shape, generator=generator) < prob
        u = torch.rand(shape, generator=generator)  # one shrink per image: the aspect ratio stays
        offsets = torch.rand((2, *shape), generator=generator)
        dims = []
        for extent, offset in zip(size, offsets):
            low = int(extent * resize_rate)
            resized = (low + u * (extent - low)).long().clamp(max=extent)  # in [low, extent)
            dims += [resized, (offset * (extent - resized + 1)).long().clamp(max=extent - resized)]
        height, top, width, left = dims
        return DiversityPlan(apply, height, width, top, left)

    def rows(self, step: int, images: Tensor) -> DiversityPlan:
        """The plan of one step for the rows ``images`` (indices into the batch, CPU int64)."""
        return DiversityPlan(*(getattr(self, f.name)[step, images] for f in dataclasses.fields(self)))


def apply_diversity(x: Tensor, plan: DiversityPlan) -> Tensor:
    """Applies one step's per-image plan (rows of ``plan`` match rows of ``x``), differentiably.

    Args:
        x: :math:`(n, C, H, W)` images.
        plan: :math:`(n,)` per-image transforms from :meth:`DiversityPlan.rows`.

    Returns:
        :math:`(n, C, H, W)`: untouched rows where ``plan.apply`` is false, else the
        bilinearly shrunk image on a zero canvas.
    """
    n, channels, height, width = x.shape
    chosen = plan.apply & ((plan.height < height) | (plan.width < width))
    if not chosen.any():
        return x
    canvas = x.new_zeros((n, height, width, channels))  # (n, H, W, C): rows placed by index
    sizes = torch.stack((plan.height, plan.width), 1)  # (n, 2)
    for h, w in torch.unique(sizes[chosen], dim=0).tolist():
        group = torch.nonzero(chosen & (sizes[:, 0] == h) & (sizes[:, 1] == w)).squeeze(1)  # (g,)
        resized = F.interpolate(x[group.to(x.device)], size=(h, w), mode="bilinear", align_corners=False)
        rows = (plan.top[group, None] + torch.arange(h)).to(x.device)  # (g, h)
        cols = (plan.left[group, None] + torch.arange(w)).to(x.device)  # (g, w)
        index = group.to(x.device)[:, None, None]
        canvas = canvas.index_put((index, rows[:, :, None], cols[:, None, :]), resized.permute(0, 2, 3, 1))
    mask = chosen.to(x.device)[:, None, None, None]
    return torch.where(mask, canvas.permute(0, 3, 1, 2), x)
