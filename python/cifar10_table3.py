"""Table III of the paper on your CIFAR-10 folder: the ordinary model behind JPEG, TVM,
bit-depth reduction and bilateral filtering (four settings each) against the orthogonal
model, for perturbations crafted on the reference at ε = 3 % and 5 %.

    python python/cifar10_table3.py --data /data/cifar-10-batches-py --runs runs/table1

Takes the checkpoints written by cifar10_table1.py (RUNS/{reference,ordinary,orthogonal}).
"""

import dataclasses

from table1_runs import argument_parser, load_runs

from orthocore.data import open_dataset
from orthocore.defenses import paper_variants
from orthocore.evaluate import DefenseConfig
from orthocore.evaluate.defenses import defense_evaluation
from orthocore.report import defense_table, markdown_table


def main() -> None:
    args = argument_parser(__doc__).parse_args()

    models = load_runs(args.runs)
    rows = defense_evaluation(
        models["reference"],
        models["ordinary"],
        paper_variants(),
        {"orthogonal": models["orthogonal"]},
        open_dataset(f"cifar10:{args.data}", "test"),
        DefenseConfig(attacks=tuple(args.attacks.split(",")), n_images=args.n_images),  # ε 3 % and 5 %, the paper's
        target_name="ordinary",
    )
    print(markdown_table(*defense_table([dataclasses.asdict(r) for r in rows])))


if __name__ == "__main__":
    main()
