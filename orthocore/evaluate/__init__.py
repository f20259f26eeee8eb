"""Evaluation protocols: Tables I/II (accuracy and δ to the reference), transfer
(black-box) fooling ratios of attacks crafted on a source model (Jalwana et al., Section
IV), Table III, Figs. 3/4's data, and the security evaluation (white-box, query,
transfer, worst case, masking diagnostics)."""

from orthocore.evaluate.security import SecurityResult, security_evaluation
from orthocore.evaluate.settings import (
    DefenseConfig,
    DefenseSettings,
    SecurityConfig,
    SecuritySettings,
    SurrogateSettings,
    TransferConfig,
    TransferSettings,
    default_eps_grid,
)
from orthocore.evaluate.similarity import SimilarityRow, similarity_row
from orthocore.evaluate.table import FoolingRow, FoolingTable
from orthocore.evaluate.transfer import select_correct, transfer_evaluation

__all__ = [
    "DefenseConfig", "DefenseSettings", "FoolingRow", "FoolingTable", "SecurityConfig", "SecurityResult",
    "SecuritySettings", "SimilarityRow", "SurrogateSettings", "TransferConfig", "TransferSettings", "default_eps_grid",
    "security_evaluation", "select_correct", "similarity_row", "transfer_evaluation",
]  # fmt: skip
