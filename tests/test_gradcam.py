"""Grad-CAM against a case computed by hand."""

import pytest
import torch
from torch import nn

from orthocore.gradcam import gradcam, last_conv_layer


class TinyNet(nn.Module):
    """conv (1→2 channels, 1x1, fixed weights) → global average pool → linear."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, kernel_size=1, bias=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
            self.fc.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 3.0]]))

    def forward(self, x):
        return self.fc(self.pool(self.conv(x)).flatten(1))


def test_hand_computed_map():
    # Activations A_0 = x, A_1 = -x. For class 0: y = 2 * mean(A_0), so
    # alpha_0 = 2 / (h*w), alpha_1 = 0 and the map is ReLU(2/(h*w) * x) ∝ ReLU(x).
    # For class 1: y = 3 * mean(A_1): alpha_1 = 3/(h*w), map ∝ ReLU(-x).
    x = torch.tensor([[[[1.0, -2.0], [0.5, 0.0]]]])
    net = TinyNet()
    m0 = gradcam(net, x, classes=torch.tensor([0]))
    m1 = gradcam(net, x, classes=torch.tensor([1]))
    torch.testing.assert_close(m0[0], torch.tensor([[1.0, 0.0], [0.5, 0.0]]))
    torch.testing.assert_close(m1[0], torch.tensor([[0.0, 1.0], [0.0, 0.0]]))


def test_batched_equals_one_by_one_and_keeps_mode():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 3),
    )
    net.train()
    images = torch.rand(6, 3, 9, 7)
    batched = gradcam(net, images)
    single = torch.cat([gradcam(net, images[i : i + 1]) for i in range(6)])
    assert batched.shape == (6, 9, 7)
    torch.testing.assert_close(batched, single)
    assert batched.min() >= 0 and batched.max() <= 1
    assert net.training, "gradcam must not change the model's mode"
    assert last_conv_layer(net) == "2"
    torch.testing.assert_close(gradcam(net, images, target_layer="2"), batched)
    assert not torch.equal(gradcam(net, images, target_layer="0"), batched)


def test_bad_arguments():
    net = TinyNet()
    with pytest.raises(ValueError, match="target_layer 'nope'"):
        gradcam(net, torch.rand(1, 1, 2, 2), target_layer="nope")
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        gradcam(net, torch.rand(1, 2, 2))
    with pytest.raises(ValueError, match="no nn.Conv2d"):
        gradcam(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), torch.rand(1, 1, 2, 2))
