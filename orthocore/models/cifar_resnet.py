"""ResNet-20 and ResNet-32 for 32x32 CIFAR-10 images (He et al. 2016, Section 4.2).

As in akamaster/pytorch_resnet_cifar10: three stages of 16, 32 and 64 channels with
``n`` basic blocks each (depth ``6n + 2``), the parameter-free "option A" shortcut (a
strided subsample padded with zero channels), Kaiming-normal initialisation.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from orthocore.models.batchnorm import BatchNorm2d
from orthocore.models.conv import Conv2d


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and an identity / zero-padded shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = BatchNorm2d(planes)
        self.conv2 = Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = BatchNorm2d(planes)
        self.pad = (planes - in_planes) // 2 if stride != 1 or in_planes != planes else -1
        self.stride = stride

    def shortcut(self, x: Tensor) -> Tensor:
        if self.pad < 0:
            return x
        # (B, C, H, W) -> (B, C + 2*pad, H/2, W/2)
        return F.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, self.pad, self.pad))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet of depth ``6 * blocks + 2`` for :math:`(B, 3, 32, 32)` inputs (any size the
    two stride-2 stages divide, e.g. :math:`(B, 1, 28, 28)` with ``in_channels=1``).

    Args:
        blocks: basic blocks per stage (3 for ResNet-20, 5 for ResNet-32).
        num_classes: number of output logits.
        in_channels: channels of the input images.
    """

    def __init__(self, blocks: int, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = Conv2d(in_channels, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = BatchNorm2d(16)
        stages, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            for index in range(blocks):
                stages.append(BasicBlock(in_planes, planes, stride if index == 0 else 1))
                in_planes = planes
        self.layers = nn.Sequential(*stages)
        self.linear = nn.Linear(64, num_classes)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight)

    def forward(self, x: Tensor) -> Tensor:
        out = self.layers(F.relu(self.bn1(self.conv1(x))))  # (B, 64, H/4, W/4)
        return self.linear(out.mean(dim=(2, 3)))  # (B, K)
