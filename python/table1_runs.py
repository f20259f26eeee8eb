"""What the examples after cifar10_table1.py share: their command-line arguments and the
three checkpoints that program writes (RUNS/{reference,ordinary,orthogonal}/model.ckpt).

Not a program of its own; cifar10_fig5.py and cifar10_table3.py import it from beside them.
"""

import argparse
from pathlib import Path

from torch import nn

from orthocore.attacks import PAPER_ATTACKS
from orthocore.checkpoint import load_model

ROLES = ("reference", "ordinary", "orthogonal")


def argument_parser(doc: str) -> argparse.ArgumentParser:
    """A parser with --data, --runs, --attacks and --n-images, described by ``doc``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="CIFAR-10 python-batches folder")
    parser.add_argument("--runs", default="runs/table1", help="folder of cifar10_table1.py's checkpoints")
    parser.add_argument("--attacks", default=",".join(PAPER_ATTACKS), help="comma-separated attack names")
    parser.add_argument("--n-images", type=int, default=1000, help="test images each attack is measured on")
    return parser


def load_runs(runs: str | Path) -> dict[str, nn.Module]:
    """The reference, ordinary and orthogonal models of a cifar10_table1.py output folder."""
    return {role: load_model(Path(runs) / role / "model.ckpt") for role in ROLES}
