"""Evaluation protocols: transfer (black-box) fooling ratios of attacks crafted on a
source model (Jalwana et al., Section IV), Table III, and the security evaluation
(white-box, query, transfer, worst case, masking diagnostics)."""

from orthocore.evaluate.security import SecurityConfig, SecurityResult, security_evaluation
from orthocore.evaluate.table import FoolingRow, FoolingTable
from orthocore.evaluate.transfer import TransferConfig, default_eps_grid, select_correct, transfer_evaluation

__all__ = [
    "FoolingRow", "FoolingTable", "SecurityConfig", "SecurityResult", "TransferConfig", "default_eps_grid",
    "security_evaluation", "select_correct", "transfer_evaluation",
]  # fmt: skip
