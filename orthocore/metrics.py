"""Measurements of a model on a data set that training and evaluation share."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from orthocore.modes import eval_mode


def accuracy(model: nn.Module, dataset: Dataset, device: torch.device, batch_size: int = 512) -> float:
    """Top-1 accuracy in percent of ``model`` over ``dataset`` of ``(image, label)`` pairs,
    in eval mode (the model's own mode is restored)."""
    correct = 0
    with eval_mode(model), torch.no_grad():
        for x, y in DataLoader(dataset, batch_size=batch_size):
            correct += (model(x.to(device)).argmax(1).cpu() == y).sum().item()
    return 100.0 * correct / len(dataset)
