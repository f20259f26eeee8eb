"""The model zoo: registry, normalisation layer, initialisation, ImageNet weights and the
last-layer fine-tuning protocol."""

import pytest
import torch
import torchvision
from torch import nn

from orthocore import models

pytestmark = pytest.mark.usefixtures("one_thread")

CIFAR_PARAMETERS = {  # parameter counts of the reference implementations (10 classes)
    "resnet20": 269_722,  # akamaster/pytorch_resnet_cifar10: 0.27M
    "resnet32": 464_154,  # 0.46M
    "vgg11": 9_756_426,
    "vgg16": 15_253_578,
}


@pytest.mark.parametrize("name", ["digits_cnn", "resnet20", "resnet32", "vgg11", "vgg16", "fmnist_cnn",
                                  "fmnist_resnet20", "fmnist_vgg11"])
def test_small_models_classify_their_inputs(name):
    model = models.create(name, num_classes=7).eval()
    shape = models.spec(name).input_shape
    assert model(torch.rand(3, *shape)).shape == (3, 7)


@pytest.mark.parametrize("name, count", sorted(CIFAR_PARAMETERS.items()))
def test_cifar_models_have_the_reference_sizes(name, count):
    assert sum(p.numel() for p in models.create(name).parameters()) == count


@pytest.mark.parametrize("name, cifar, first_conv", [("fmnist_resnet20", "resnet20", 16 * 3 * 3 * 2),
                                                      ("fmnist_vgg11", "vgg11", 64 * 3 * 3 * 2)])  # fmt: skip
def test_the_grey_28x28_models_are_the_cifar_ones_with_one_input_channel(name, cifar, first_conv):
    """Only the first convolution's two dropped input channels differ (VGG-11's fifth
    pool is dropped too, which has no parameters)."""
    size = sum(p.numel() for p in models.create(name).parameters())
    assert size == CIFAR_PARAMETERS[cifar] - first_conv


@pytest.mark.parametrize("data, arch", [("digits", "digits_cnn"), ("fashion-mnist", "fmnist_cnn"),
                                        ("mnist:/data/mnist", "fmnist_cnn"), ("cifar10:/data", "resnet20"),
                                        ("folder:/data/photos", "digits_cnn")])  # fmt: skip
def test_each_data_set_has_its_default_architecture(data, arch):
    from orthocore.study import StudyConfig
    from orthocore.train import TrainConfig

    assert models.default_arch(data) == arch
    assert TrainConfig(data=data).arch == arch and StudyConfig(data=data).arch == arch
    assert TrainConfig(data=data, arch="resnet32").arch == "resnet32"  # a named one is kept


def test_vgg_has_batchnorm_after_every_convolution():
    layers = list(models.create("vgg16").net.features)
    convs = [i for i, layer in enumerate(layers) if isinstance(layer, nn.Conv2d)]
    assert len(convs) == 13
    assert all(isinstance(layers[i + 1], nn.BatchNorm2d) for i in convs)


def test_normalisation_is_the_first_layer():
    model = models.create("resnet20").eval()
    x = torch.rand(2, 3, 32, 32)
    mean = torch.tensor(models.normalize.CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(models.normalize.CIFAR10_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(model(x), model.net((x - mean) / std))
    assert "normalize.mean" in model.state_dict()


def test_xavier_initialisation():
    torch.manual_seed(0)
    model = models.create("vgg11", init="xavier")
    for layer in model.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(layer.weight)
            bound = (6.0 / (fan_in + fan_out)) ** 0.5
            assert layer.weight.abs().max() <= bound
            assert layer.weight.abs().max() > 0.9 * bound  # uniform, not a narrower default
            assert torch.all(layer.bias == 0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "resnet21"}, "arch: unknown model 'resnet21'"),
        ({"name": "resnet20", "num_classes": 1}, "num_classes"),
        ({"name": "resnet20", "init": "he"}, "init"),
        ({"name": "resnet20", "weights": "x.pth"}, "weights: only the ImageNet models"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        models.create(**kwargs)


@pytest.fixture(scope="module")
def squeezenet_weights(tmp_path_factory):
    torch.manual_seed(3)
    net = torchvision.models.squeezenet1_1(weights=None)
    path = tmp_path_factory.mktemp("weights") / "squeezenet1_1.pth"
    torch.save(net.state_dict(), path)
    return path, net.state_dict()


def test_imagenet_weights_load_from_a_local_file(squeezenet_weights):
    path, state = squeezenet_weights
    model = models.create("imagenet_squeezenet1_1", num_classes=1000, weights=path)
    for name, tensor in model.net.state_dict().items():
        assert torch.equal(tensor, state[name]), name


def test_imagenet_weights_with_new_classes_replace_only_the_head(squeezenet_weights):
    path, state = squeezenet_weights
    model = models.create("imagenet_squeezenet1_1", num_classes=5, weights=path).eval()
    assert model(torch.rand(1, 3, 224, 224)).shape == (1, 5)
    for name, tensor in model.net.state_dict().items():
        if not name.startswith("classifier.1."):
            assert torch.equal(tensor, state[name]), name


def test_imagenet_weights_errors(tmp_path, squeezenet_weights):
    with pytest.raises(FileNotFoundError, match="weights: no file"):
        models.create("imagenet_squeezenet1_1", weights=tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="not a state_dict of torchvision's imagenet_resnet34"):
        models.create("imagenet_resnet34", weights=squeezenet_weights[0])


@pytest.mark.parametrize("name", ["imagenet_vgg16", "imagenet_resnet34", "imagenet_densenet161", "imagenet_squeezenet1_1"])
def test_imagenet_heads_are_the_last_classifier_layers(name):
    model = models.create(name, num_classes=7)
    head = model.net.get_submodule(models.spec(name).head)
    assert (head.out_features if isinstance(head, nn.Linear) else head.out_channels) == 7


def test_finetuning_trains_only_the_reinitialised_head(squeezenet_weights):
    path, state = squeezenet_weights
    model = models.create("imagenet_squeezenet1_1", num_classes=1000, weights=path)
    parameters = models.prepare_finetuning(model, "imagenet_squeezenet1_1")
    head = model.net.classifier[1]
    assert {id(p) for p in parameters} == {id(p) for p in head.parameters()}
    assert not torch.equal(head.weight, state["classifier.1.weight"])  # re-initialised
    assert [name for name, p in model.named_parameters() if p.requires_grad] == ["net.classifier.1.weight", "net.classifier.1.bias"]
    model.train()
    assert not model.net.features.training and model.net.classifier.training
    optimizer = torch.optim.SGD(parameters, lr=0.1)
    model(torch.rand(2, 3, 64, 64)).sum().backward()
    optimizer.step()
    for name, tensor in model.net.features.state_dict().items():
        assert torch.equal(tensor, state["features." + name])
