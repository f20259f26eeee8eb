"""The ImageNet architectures of the paper, from torchvision, and its fine-tuning protocol.

Pretrained weights come from a local file only (a torchvision ``state_dict`` saved with
``torch.save``, e.g. ``vgg16-397923af.pth``), loaded with ``weights_only=True``; nothing
is downloaded. The paper's ImageNet protocol (Section IV-B): start from the pretrained
model, re-initialise the last fully-connected layer and train only that layer.
"""

from __future__ import annotations

import os

import torch
from torch import nn

# Registry name -> (torchvision.models constructor name, path of the last fully-connected layer).
# torchvision is imported only when one of these is built.
ARCHITECTURES: dict[str, tuple[str, str]] = {
    "imagenet_vgg16": ("vgg16", "classifier.6"),
    "imagenet_resnet34": ("resnet34", "fc"),
    "imagenet_densenet161": ("densenet161", "classifier"),
    # SqueezeNet's classifier is a 1x1 convolution: the fully-connected layer of a conv net.
    "imagenet_squeezenet1_1": ("squeezenet1_1", "classifier.1"),
}
IMAGENET_CLASSES = 1000


def head_name(arch: str) -> str:
    """Module path (under the torchvision network) of the last fully-connected layer of ``arch``."""
    return ARCHITECTURES[arch][1]


def _replace_head(net: nn.Module, name: str, num_classes: int) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = net.get_submodule(parent_name) if parent_name else net
    old = getattr(parent, child)
    if isinstance(old, nn.Linear):
        new: nn.Module = nn.Linear(old.in_features, num_classes)
    else:
        new = nn.Conv2d(old.in_channels, num_classes, kernel_size=old.kernel_size)
    setattr(parent, child, new)
    if hasattr(net, "num_classes"):
        net.num_classes = num_classes


def build_imagenet(arch: str, num_classes: int = IMAGENET_CLASSES, weights: str | os.PathLike | None = None) -> nn.Module:
    """Builds a torchvision network, optionally with pretrained weights from a local file.

    When ``num_classes`` differs from 1000 the 1000-way last layer of the pretrained
    weights is replaced by a freshly initialised ``num_classes``-way layer.

    Args:
        arch: a key of :data:`ARCHITECTURES`.
        num_classes: number of output logits.
        weights: path of a torchvision ``state_dict`` for the 1000-class network, or None
            for random initialisation.

    Raises:
        FileNotFoundError: ``weights`` does not exist.
        ValueError: ``weights`` does not hold a state dict of this architecture.
    """
    import torchvision

    constructor_name, head = ARCHITECTURES[arch]
    constructor = getattr(torchvision.models, constructor_name)
    if weights is None:
        net = constructor(weights=None, num_classes=num_classes)
        return net
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"weights: no file at {weights!r} (expected a torchvision state_dict for {arch})")
    net = constructor(weights=None, num_classes=IMAGENET_CLASSES)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"weights: {weights!r} holds a {type(state).__name__}, expected a state_dict of {arch}")
    try:
        net.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(f"weights: {weights!r} is not a state_dict of torchvision's {arch}: {error}") from None
    if num_classes != IMAGENET_CLASSES:
        _replace_head(net, head, num_classes)
    return net

