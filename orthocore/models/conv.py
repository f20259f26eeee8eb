"""``nn.Conv2d`` whose train-mode second derivative takes its weight term from the
weight-gradient kernel.

The zoo's CIFAR models use it, beside :class:`orthocore.models.BatchNorm2d`. It is
``nn.Conv2d`` in every respect a user sees (arguments, parameters, state-dict keys, the
forward, eval mode, first derivatives): only in train mode on the CPU, with zero padding
given as numbers and autocast off, the forward goes through :func:`orthocore.ops.conv2d.conv2d_train`,
whose double backward computes the weight term with ``convolution_backward``'s kernel
instead of PyTorch's convolution of transposed tensors (see that module; the results
agree up to float rounding). Elsewhere it is PyTorch's convolution: on a GPU the
difference has not been measured.

The two small CNNs keep ``nn.Conv2d``. The digits CNN's step got slower with it (7.3 →
8.9 ms at batch 64): at 8×8 pixels the op's Python cost under ``torch.func`` exceeds
what the faster kernel saves. The Fashion-MNIST CNN's full-batch orthogonal step gets
27 % faster, but the step its study takes (the penalty on 16 rows) only 8 %, and the
README's Fashion-MNIST results were measured with PyTorch's double backward: switching
changes the trained models at float-rounding level, so it waits for a rerun of those
results.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from orthocore.ops.conv2d import conv2d_train


class Conv2d(nn.Conv2d):
    """Drop-in ``nn.Conv2d`` (same arguments) with the faster double backward."""

    def _conv_forward(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if self.training and x.device.type == "cpu" and self.padding_mode == "zeros" and not isinstance(
                self.padding, str) and not torch.is_autocast_enabled("cpu"):  # fmt: skip
            return conv2d_train(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)
        return super()._conv_forward(x, weight, bias)
