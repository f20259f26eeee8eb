"""The zoo's ResNet-20 with orthocore's layers against a copy with PyTorch's, for the
tests of the layers whose double backward orthocore computes (BatchNorm2d, Conv2d)."""

from collections.abc import Callable

import torch
from torch import nn

import orthocore
from orthocore.gradients import reference_gradients
from orthocore.train import orthogonal_loss


def resnet20_pair(kind: type[nn.Module], native: Callable[[nn.Module], nn.Module]) -> tuple[nn.Module, nn.Module]:
    """ResNet-20 in train mode, and a copy with the same state whose every ``kind`` module
    is replaced by ``native(module)`` (the PyTorch layer of the same configuration)."""
    torch.manual_seed(0)
    ours = orthocore.models.create("resnet20").train()
    plain = orthocore.models.create("resnet20").train()
    for name, module in list(plain.named_modules()):
        if isinstance(module, kind):
            parent = plain.get_submodule(name.rpartition(".")[0]) if "." in name else plain
            setattr(parent, name.rpartition(".")[2], native(module))
    plain.load_state_dict(ours.state_dict())
    assert not any(type(m) is kind for m in plain.modules())
    return ours, plain


def assert_trainer_gradients_equal(ours: nn.Module, plain: nn.Module, side: int = 32) -> None:
    """The trainer's parameter gradients (torch.func input gradient, double backprop) of
    the two models on 8 random images agree to float32 rounding."""
    reference = orthocore.models.create("resnet20").eval()
    x, y = torch.rand(8, 3, side, side), torch.randint(0, 10, (8,))
    cached = reference_gradients(reference, x, y).unsqueeze(0)
    grads = []
    for model in (ours, plain):
        loss = orthogonal_loss(model, x, y, cached, 1.0, "abs").loss
        grads.append(torch.autograd.grad(loss, list(model.parameters())))
    for g_ours, g_plain in zip(*grads):
        torch.testing.assert_close(g_ours, g_plain, atol=1e-6 * g_plain.abs().max().item() + 1e-9, rtol=1e-4)
