"""The model registry: ``create("resnet20", num_classes=10)`` builds a model by name.

Every model takes images in [0, 1] and starts with its :class:`Normalize` layer.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from torch import nn

from orthocore.checks import check_choice, check_number
from orthocore.models import imagenet, normalize
from orthocore.models.cifar_resnet import CifarResNet
from orthocore.models.cifar_vgg import CifarVGG
from orthocore.models.digits_cnn import DigitsCNN
from orthocore.models.fmnist_cnn import FashionCNN
from orthocore.models.normalize import Normalize, NormalizedModel


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about an architecture.

    Attributes:
        build: ``build(num_classes, **options) -> nn.Module``, without normalisation.
        input_shape: :math:`(C, H, W)` of the images it is designed for.
        mean: per-channel normalisation mean.
        std: per-channel normalisation std.
        head: module path (under ``net``) of the last fully-connected layer.
    """

    build: Callable[..., nn.Module]
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    head: str


_CIFAR = dict(input_shape=(3, 32, 32), mean=normalize.CIFAR10_MEAN, std=normalize.CIFAR10_STD)
_FASHION = dict(input_shape=(1, 28, 28), mean=normalize.FASHION_MNIST_MEAN, std=normalize.FASHION_MNIST_STD)
_IMAGENET = dict(input_shape=(3, 224, 224), mean=normalize.IMAGENET_MEAN, std=normalize.IMAGENET_STD)

MODELS: dict[str, ModelSpec] = {
    "digits_cnn": ModelSpec(
        lambda num_classes: DigitsCNN(num_classes), (1, 8, 8), normalize.DIGITS_MEAN, normalize.DIGITS_STD, "classifier.2"
    ),
    "vgg11": ModelSpec(lambda num_classes: CifarVGG("vgg11", num_classes), head="classifier.6", **_CIFAR),
    "vgg16": ModelSpec(lambda num_classes: CifarVGG("vgg16", num_classes), head="classifier.6", **_CIFAR),
    "resnet20": ModelSpec(lambda num_classes: CifarResNet(3, num_classes), head="linear", **_CIFAR),
    "resnet32": ModelSpec(lambda num_classes: CifarResNet(5, num_classes), head="linear", **_CIFAR),
    "fmnist_cnn": ModelSpec(lambda num_classes: FashionCNN(num_classes), head="classifier.2", **_FASHION),
    "fmnist_resnet20": ModelSpec(lambda num_classes: CifarResNet(3, num_classes, in_channels=1), head="linear",
                                 **_FASHION),  # fmt: skip
    "fmnist_vgg11": ModelSpec(lambda num_classes: CifarVGG("vgg11-28", num_classes, in_channels=1),
                              head="classifier.6", **_FASHION),  # fmt: skip
}
# The architecture a data set trains when none is named (by the data spec's kind).
DATA_DEFAULTS = {"digits": "digits_cnn", "fashion-mnist": "fmnist_cnn", "mnist": "fmnist_cnn", "cifar10": "resnet20"}
for _name in imagenet.ARCHITECTURES:
    MODELS[_name] = ModelSpec(
        lambda num_classes, weights=None, _arch=_name: imagenet.build_imagenet(_arch, num_classes, weights),
        head=imagenet.head_name(_name),
        **_IMAGENET,
    )

INITS = ("default", "xavier")


def default_arch(data: str) -> str:
    """The architecture for data spec ``data`` (:data:`DATA_DEFAULTS` by its kind,
    ``digits_cnn`` for anything else)."""
    kind = data.split(":", 1)[0] if isinstance(data, str) else ""
    return DATA_DEFAULTS.get(kind, "digits_cnn")


def available() -> list[str]:
    """Names accepted by :func:`create`."""
    return sorted(MODELS)


def spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name``; raises ``ValueError`` naming the choices."""
    if name not in MODELS:
        raise ValueError(f"arch: unknown model {name!r}; expected one of {', '.join(available())}")
    return MODELS[name]


def _weight_layers(model: nn.Module) -> Iterator[nn.Module]:
    return (m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


def xavier_init(model: nn.Module) -> nn.Module:
    """Glorot-uniform weights and zero biases for every convolution and linear layer (in place).

    The paper initialises every model this way (Table I, [68]).
    """
    for layer in _weight_layers(model):
        nn.init.xavier_uniform_(layer.weight)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)
    return model


def create(
    name: str, num_classes: int = 10, *, init: str = "default", weights: str | os.PathLike | None = None
) -> NormalizedModel:
    """Builds a registered model with its normalisation as the first layer.

    Args:
        name: one of :func:`available` (``digits_cnn``, ``vgg11``, ``vgg16``, ``resnet20``,
            ``resnet32``, ``imagenet_vgg16``, ``imagenet_resnet34``, ``imagenet_densenet161``,
            ``imagenet_squeezenet1_1``).
        num_classes: number of output logits, at least 2.
        init: ``"default"`` (the architecture's own initialisation) or ``"xavier"``.
        weights: ImageNet models only: a local torchvision state_dict to start from
            (see :func:`orthocore.models.imagenet.build_imagenet`). With ``init="xavier"``
            the initialisation applies before the weights are loaded, so it only affects
            a re-initialised head.

    Returns:
        A :class:`NormalizedModel` taking :math:`(B, C, H, W)` images in [0, 1].

    Examples:
        >>> import torch
        >>> from orthocore import models
        >>> models.create("resnet20", num_classes=10)(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    model_spec = spec(name)
    check_number(num_classes, "num_classes", low=2, integer=True)
    check_choice(init, "init", INITS)
    if weights is not None and name not in imagenet.ARCHITECTURES:
        raise ValueError(f"weights: only the ImageNet models load pretrained weights, not {name!r}")
    options = {"weights": weights} if weights is not None else {}
    net = model_spec.build(num_classes, **options)
    if init == "xavier":
        if weights is None:
            xavier_init(net)
        else:
            xavier_init(net.get_submodule(model_spec.head))
    return NormalizedModel(Normalize(model_spec.mean, model_spec.std), net)


def prepare_finetuning(model: NormalizedModel, arch: str, *, reinit: bool = True) -> list[nn.Parameter]:
    """The paper's ImageNet protocol: train the last fully-connected layer only.

    Freezes every parameter except those of the head, keeps the frozen part in eval mode
    during training (its BatchNorm statistics stay those of the pretrained model) and,
    by default, re-initialises the head.

    Args:
        model: a model from :func:`create`.
        arch: the name it was created with.
        reinit: re-initialise the head's weights.

    Returns:
        The head's parameters: what the optimizer should train.
    """
    head = spec(arch).head
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    layer = model.net.get_submodule(head)
    if reinit:
        layer.reset_parameters()
    for parameter in layer.parameters():
        parameter.requires_grad_(True)
    names = [name for name, _ in model.net.named_children() if not head.startswith(name + ".") and name != head]
    model.frozen = tuple(names)
    return list(layer.parameters())
