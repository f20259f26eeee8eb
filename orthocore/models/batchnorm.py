"""``nn.BatchNorm2d`` whose train-mode second derivative is orthocore's fused op.

The zoo's CIFAR models use it. It is ``nn.BatchNorm2d`` in every respect a user sees
(parameters, buffers, state-dict keys, eval mode, first derivatives): only in train mode,
where a compiled double-backward kernel runs on the input's device, the forward goes
through :func:`orthocore.ops.batch_norm.batch_norm_train`, whose double backward is one
fused op instead of PyTorch's composite (see that module). The running variance is then
updated from the batch's ``invstd`` (``(1/invstd² − eps)·n/(n − 1)``), equal to PyTorch's
update up to float rounding.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from orthocore.ops import batch_norm


class BatchNorm2d(nn.BatchNorm2d):
    """Drop-in ``nn.BatchNorm2d`` (same arguments) with the fused double backward."""

    def forward(self, x: Tensor) -> Tensor:
        fused = self.training and self.affine and batch_norm.fused_available(x.device)
        if not fused:
            return super().forward(x)
        self._check_input_dim(x)
        count = x.numel() // x.shape[1]
        if count <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {tuple(x.shape)}")
        y, mean, invstd = batch_norm.batch_norm_train(x, self.weight, self.bias, self.eps)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                unbiased = (invstd.double().reciprocal().square() - self.eps) * (count / (count - 1))
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), factor)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), factor)
        return y
