"""VGG-11 and VGG-16 with BatchNorm for 32x32 CIFAR-10 images.

The CIFAR variant of chengyangfu/pytorch-vgg-cifar10: the VGG convolution stack with a
BatchNorm after every convolution, five max-pools down to a 512x1x1 map, and a
classifier of two 512-wide hidden layers with dropout.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from orthocore.models.batchnorm import BatchNorm2d
from orthocore.models.conv import Conv2d

# Output channels of each 3x3 convolution; "M" is a 2x2 max-pool.
CONFIGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    # 28x28 inputs: four pools (28 → 14 → 7 → 3 → 1) reach the 512x1x1 map; a fifth would leave nothing
    "vgg11-28": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
}


def _features(config: list[int | str], in_channels: int = 3) -> nn.Sequential:
    layers: list[nn.Module] = []
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [Conv2d(in_channels, item, kernel_size=3, padding=1), BatchNorm2d(item), nn.ReLU(inplace=True)]
            in_channels = item
    return nn.Sequential(*layers)


class CifarVGG(nn.Module):
    """VGG with BatchNorm for :math:`(B, 3, 32, 32)` inputs (``vgg11-28``:
    :math:`(B, C, 28, 28)`).

    Args:
        config: a key of :data:`CONFIGS`.
        num_classes: number of output logits.
        in_channels: channels of the input images.
    """

    def __init__(self, config: str, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.features = _features(CONFIGS[config], in_channels)
        self.classifier = nn.Sequential(
            nn.Dropout(),
            nn.Linear(512, 512),
            nn.ReLU(inplace=True),
            nn.Dropout(),
            nn.Linear(512, 512),
            nn.ReLU(inplace=True),
            nn.Linear(512, num_classes),
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
                nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(1))  # (B, 512) -> (B, K)
