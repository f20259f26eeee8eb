"""Evaluation protocols: transfer (black-box) fooling ratios of attacks crafted on a
source model (Jalwana et al., Section IV)."""

from orthocore.evaluate.table import FoolingRow, FoolingTable
from orthocore.evaluate.transfer import TransferConfig, default_eps_grid, select_correct, transfer_evaluation

__all__ = ["FoolingRow", "FoolingTable", "TransferConfig", "default_eps_grid", "select_correct", "transfer_evaluation"]
