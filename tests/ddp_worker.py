"""``python tests/ddp_worker.py ARGS`` (or under ``torchrun``) runs ``orthocore ARGS`` with
one more architecture registered: ``digits_bias_offset``, the digits CNN whose last-layer
bias enters the logits as ``b · s/s`` (s a positive function of the input), the
construction of pytorch/pytorch#47562. Its direct path into the input gradient cancels
(``b·(1/s − s/s²)·∂s/∂x = 0``), the case in which DDP once reduced a gradient penalty's
gradients wrongly; its cross-entropy gradient is not zero."""

from __future__ import annotations

import sys

from torch import Tensor, nn

from orthocore import cli
from orthocore.models import normalize
from orthocore.models.digits_cnn import DigitsCNN
from orthocore.models.registry import MODELS, ModelSpec


class DigitsBiasOffset(nn.Module):
    """The digits CNN with its last bias moved out of the linear layer (see above)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.body = DigitsCNN(num_classes)
        self.body.classifier[2] = nn.Linear(64, num_classes, bias=False)
        self.offset = nn.Parameter(0.1 * (nn.init.uniform_(Tensor(num_classes)) - 0.5))

    def forward(self, x: Tensor) -> Tensor:
        s = x.flatten(1).sum(1, keepdim=True) + 1.0  # (B, 1), positive: images are in [0, 1]
        return self.body(x) + self.offset * (s / s)  # (B, K)


MODELS["digits_bias_offset"] = ModelSpec(
    lambda num_classes: DigitsBiasOffset(num_classes), (1, 8, 8), normalize.DIGITS_MEAN, normalize.DIGITS_STD,
    "body.classifier.2",
)

if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[1:]))
