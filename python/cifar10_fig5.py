"""Fig. 5 of the paper on your CIFAR-10 folder: perturbations crafted on a source model,
fooling ratio over ε on the source, an ordinary target and an orthogonal target.

    python python/cifar10_fig5.py --data /data/cifar-10-batches-py --runs runs/table1 --figure fig5.png

Takes the checkpoints written by cifar10_table1.py (RUNS/{reference,ordinary,orthogonal}).
"""

from pathlib import Path

from table1_runs import argument_parser, load_runs

from orthocore.data import open_dataset
from orthocore.evaluate import TransferConfig, default_eps_grid, transfer_evaluation
from orthocore.plots import plot_fooling_curves


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--figure", default="fig5.png")
    args = parser.parse_args()

    targets = load_runs(args.runs)
    source = targets.pop("reference")
    config = TransferConfig(attacks=tuple(args.attacks.split(",")), eps=default_eps_grid(), n_images=args.n_images)
    table = transfer_evaluation(source, targets, open_dataset(f"cifar10:{args.data}", "test"), config,
                                source_name="reference")  # fmt: skip
    print(table.format())
    rows = [{"source": "reference", "target": r.model, "attack": r.attack, "eps": r.eps,
             "fooling_percent": r.fooling_percent} for r in table.rows]  # fmt: skip
    roles = {"reference": "source", "ordinary": "ordinary", "orthogonal": "orthogonal"}
    print(f"wrote {plot_fooling_curves(rows, 'reference', roles, Path(args.figure))}")


if __name__ == "__main__":
    main()
