"""Measurements of a model on a data set that training and evaluation share."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from orthocore.modes import eval_mode


def accuracy(model: nn.Module, dataset: Dataset, device: torch.device, batch_size: int = 512) -> float:
    """Top-1 accuracy in percent of ``model`` over ``dataset`` of ``(image, label)`` pairs,
    in eval mode (the model's own mode is restored)."""
    correct, total = correct_count(model, dataset, device, batch_size)
    return 100.0 * correct / total


def correct_count(model: nn.Module, dataset: Dataset, device: torch.device, batch_size: int = 512) -> tuple[int, int]:
    """``(correctly classified, total)`` over ``dataset``, in eval mode; the counts that
    processes holding parts of a data set add up."""
    correct = 0
    with eval_mode(model), torch.no_grad():
        for x, y in DataLoader(dataset, batch_size=batch_size):
            correct += (model(x.to(device)).argmax(1).cpu() == y).sum().item()
    return correct, len(dataset)


def logit_margin(logits: Tensor, labels: Tensor, *, targeted: bool = False) -> Tensor:
    """Per row of :math:`(n, K)` logits: the labelled class's logit minus the largest
    other (targeted: the largest other minus the target's), :math:`(n,)`. Below 0 the
    prediction is not the label (targeted: it is the target), i.e. an attack succeeded.

    Examples:
        >>> import torch
        >>> logit_margin(torch.tensor([[2.0, 0.5, 1.0]]), torch.tensor([0])).tolist()
        [1.0]
    """
    own = logits.gather(1, labels[:, None])[:, 0]
    others = logits.scatter(1, labels[:, None], float("-inf")).amax(1)
    return others - own if targeted else own - others
