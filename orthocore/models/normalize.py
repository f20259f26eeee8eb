"""Normalisation as the first layer of every model, so that models take pixels in [0, 1]."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from orthocore.checks import check_number_list

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# load_digits() pixels divided by 16, over the whole set.
DIGITS_MEAN = (0.3031,)
DIGITS_STD = (0.3765,)
# Fashion-MNIST's 60,000 training images.
FASHION_MNIST_MEAN = (0.2860,)
FASHION_MNIST_STD = (0.3530,)


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel; the statistics are buffers saved with the weights.

    Args:
        mean: one value per channel.
        std: one value per channel, all positive.

    Shape:
        - Input: :math:`(B, C, H, W)`, range [0, 1].
        - Output: :math:`(B, C, H, W)`.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        check_number_list(mean, "mean", where="Normalize")
        check_number_list(std, "std", low=0, low_open=True, where="Normalize")
        if len(mean) != len(std):
            raise ValueError(f"Normalize: mean and std need one value per channel each, got {mean} and {std}")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(-1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class NormalizedModel(nn.Module):
    """A classifier with its input normalisation in front: ``net(normalize(x))``.

    Attributes:
        normalize: the :class:`Normalize` layer.
        net: the architecture proper.
        frozen: module names under ``net`` kept in eval mode and out of training (set by
            :func:`orthocore.models.prepare_finetuning`); empty for ordinary training.

    Shape:
        - Input: :math:`(B, C, H, W)`, range [0, 1].
        - Output: :math:`(B, K)` logits.
    """

    def __init__(self, normalize: Normalize, net: nn.Module) -> None:
        super().__init__()
        self.normalize = normalize
        self.net = net
        self.frozen: tuple[str, ...] = ()

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self.normalize(x))

    def train(self, mode: bool = True) -> NormalizedModel:
        super().train(mode)
        modules = dict(self.net.named_modules())
        for name in self.frozen:
            modules[name].eval()
        return self
