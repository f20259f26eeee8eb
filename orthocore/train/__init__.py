"""Orthogonal training (Algorithm 1 of the paper) and ordinary training through one loop."""

from orthocore.metrics import accuracy  # also public here, where it always was
from orthocore.train.config import TrainConfig
from orthocore.train.objective import PENALTIES, StepLoss, StepWeights, orthogonal_loss
from orthocore.train.stopping import StoppingRule
from orthocore.train.trainer import TrainResult, ensure_trained, epoch_order, resume, train

__all__ = [
    "PENALTIES",
    "StepLoss",
    "StepWeights",
    "StoppingRule",
    "TrainConfig",
    "TrainResult",
    "accuracy",
    "ensure_trained",
    "epoch_order",
    "orthogonal_loss",
    "resume",
    "train",
]
