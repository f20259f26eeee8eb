"""``python tests/ddp_worker.py ARGS`` (or under ``torchrun``) runs ``orthocore ARGS`` with
two more architectures registered:

* ``digits_smooth``: the digits CNN's shape with tanh and average pooling in place of
  ReLU and max-pooling. Its loss and input gradient are smooth functions of the weights,
  so two runs that differ only in float rounding stay that close: a ReLU's sign or a
  max-pool's argmax can be flipped by a rounding-level change, after which the runs
  follow different gradients (measured: the digits CNN's one-process runs with the C++
  and the reference ``normalized_dot`` parted from 1e-7 to 1e-4 at one step of an epoch,
  on an AVX-512 machine, with the same gradients at every state).
* ``digits_bias_offset``: that model with its last-layer bias entering the logits as
  ``b · s/s`` (s a positive function of the input), the construction of
  pytorch/pytorch#47562. Its direct path into the input gradient cancels
  (``b·(1/s − s/s²)·∂s/∂x = 0``), the case in which DDP once reduced a gradient penalty's
  gradients wrongly; its cross-entropy gradient is not zero."""

from __future__ import annotations

import sys

from torch import Tensor, nn

from orthocore import cli
from orthocore.models import normalize
from orthocore.models.registry import MODELS, ModelSpec


class DigitsSmooth(nn.Module):
    """The digits CNN's layers with tanh and average pooling (see above)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.Tanh(), nn.Conv2d(16, 32, 3, padding=1),
                                      nn.AvgPool2d(2), nn.Tanh())  # fmt: skip
        self.classifier = nn.Sequential(nn.Linear(32 * 4 * 4, 64), nn.Tanh(), nn.Linear(64, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(1))


class DigitsBiasOffset(nn.Module):
    """The smooth digits CNN with its last bias moved out of the linear layer (see above)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.body = DigitsSmooth(num_classes)
        self.body.classifier[2] = nn.Linear(64, num_classes, bias=False)
        self.offset = nn.Parameter(0.1 * (nn.init.uniform_(Tensor(num_classes)) - 0.5))

    def forward(self, x: Tensor) -> Tensor:
        s = x.flatten(1).sum(1, keepdim=True) + 1.0  # (B, 1), positive: images are in [0, 1]
        return self.body(x) + self.offset * (s / s)  # (B, K)


MODELS["digits_smooth"] = ModelSpec(
    lambda num_classes: DigitsSmooth(num_classes), (1, 8, 8), normalize.DIGITS_MEAN, normalize.DIGITS_STD, "classifier.2"
)
MODELS["digits_bias_offset"] = ModelSpec(
    lambda num_classes: DigitsBiasOffset(num_classes), (1, 8, 8), normalize.DIGITS_MEAN, normalize.DIGITS_STD,
    "body.classifier.2",
)

if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[1:]))
