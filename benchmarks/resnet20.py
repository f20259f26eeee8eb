"""ResNet-20 for 32x32 images (He et al., "Deep Residual Learning for Image Recognition",
2016, Section 4.2): 3 stages of 3 basic blocks with 16/32/64 channels, 0.27 M
parameters. The benchmarks' model; inputs in [0, 1], normalised by its first layer."""

from __future__ import annotations

import torch
from torch import nn


class _BasicBlock(nn.Module):
    def __init__(self, inputs: int, outputs: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU(inplace=True),
            nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False), nn.BatchNorm2d(outputs),
        )  # fmt: skip
        self.shortcut = nn.Identity()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class _Normalize(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def resnet20(num_classes: int = 10) -> nn.Module:
    """A randomly initialised ResNet-20 :math:`(B, 3, 32, 32) \\to (B, K)`."""
    layers: list[nn.Module] = [
        _Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
        nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
    ]  # fmt: skip
    channels = 16
    for width, stride in [(16, 1), (32, 2), (64, 2)]:
        for block in range(3):
            layers.append(_BasicBlock(channels, width, stride if block == 0 else 1))
            channels = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes)]
    return nn.Sequential(*layers)
