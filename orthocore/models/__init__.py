"""The model zoo: CIFAR-10 VGG-11/16 (BatchNorm) and ResNet-20/32, a small CNN for the
8x8 digits, a small CNN, ResNet-20 and VGG-11 for 28x28 grey images (Fashion-MNIST), and
torchvision's ImageNet VGG-16, ResNet-34, DenseNet-161 and SqueezeNet
with weights from a local file. Every model takes images in [0, 1]."""

from orthocore.models.batchnorm import BatchNorm2d
from orthocore.models.conv import Conv2d
from orthocore.models.normalize import Normalize, NormalizedModel
from orthocore.models.registry import (
    MODELS,
    ModelSpec,
    available,
    create,
    default_arch,
    prepare_finetuning,
    spec,
    xavier_init,
)

__all__ = [
    "BatchNorm2d",
    "Conv2d",
    "MODELS",
    "ModelSpec",
    "Normalize",
    "NormalizedModel",
    "available",
    "create",
    "default_arch",
    "prepare_finetuning",
    "spec",
    "xavier_init",
]
