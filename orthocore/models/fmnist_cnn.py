"""A small CNN for 28x28 grey images: Fashion-MNIST, MNIST and the other IDX sets."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class FashionCNN(nn.Module):
    """Two 3x3 convolutions, each followed by a 2x2 max-pool, and two linear layers, in
    the shape of the Madry-lab MNIST network at a quarter of its width (32 and 64
    channels, a 128-wide hidden layer; about 420k parameters, a tenth of that network's).

    No BatchNorm, so every sample's input gradient depends on that sample alone, and
    the convolutions run channels-last. Each max-pool comes before its ReLU: the two
    commute exactly (the ReLU is monotone, and the gradient reaches the same pixel), and
    the ReLU and its derivatives then run on a quarter of the values. It is the default architecture for the IDX data
    sets; its Fashion-MNIST test accuracy is in the README.

    Args:
        num_classes: number of output logits.

    Shape:
        - Input: :math:`(B, 1, 28, 28)`.
        - Output: :math:`(B, K)`.
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=3, padding=1),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=3, padding=1),
            nn.MaxPool2d(2),
            nn.ReLU(),
        )
        self.classifier = nn.Sequential(nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, num_classes))
        self.features.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(1))  # (B, 3136) -> (B, K)
