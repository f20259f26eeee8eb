"""Table III of the paper on your CIFAR-10 folder: the ordinary model behind JPEG, TVM,
bit-depth reduction and bilateral filtering (four settings each) against the orthogonal
model, for perturbations crafted on the reference at ε = 3 % and 5 %.

    python python/cifar10_table3.py --data /data/cifar-10-batches-py --runs runs/table1

Takes the checkpoints written by cifar10_table1.py (RUNS/{reference,ordinary,orthogonal}).
"""

import argparse
import dataclasses
from pathlib import Path

from orthocore.attacks import PAPER_ATTACKS
from orthocore.checkpoint import load_model
from orthocore.data import open_dataset
from orthocore.defenses import paper_variants
from orthocore.evaluate import DefenseConfig
from orthocore.evaluate.defenses import defense_evaluation
from orthocore.report import defense_table, markdown_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="CIFAR-10 python-batches folder")
    parser.add_argument("--runs", default="runs/table1", help="folder of cifar10_table1.py's checkpoints")
    parser.add_argument("--attacks", default=",".join(PAPER_ATTACKS))
    parser.add_argument("--n-images", type=int, default=1000)
    args = parser.parse_args()

    runs = Path(args.runs)
    rows = defense_evaluation(
        load_model(runs / "reference" / "model.ckpt"),
        load_model(runs / "ordinary" / "model.ckpt"),
        paper_variants(),
        {"orthogonal": load_model(runs / "orthogonal" / "model.ckpt")},
        open_dataset(f"cifar10:{args.data}", "test"),
        DefenseConfig(attacks=tuple(args.attacks.split(",")), n_images=args.n_images),  # ε 3 % and 5 %, the paper's
        target_name="ordinary",
    )
    print(markdown_table(*defense_table([dataclasses.asdict(r) for r in rows])))


if __name__ == "__main__":
    main()
