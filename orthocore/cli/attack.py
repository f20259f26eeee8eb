"""``orthocore attack`` (Figs. 5/6: transfer fooling ratios) and ``orthocore defend``
(Table III: defenses vs orthogonal models)."""

from __future__ import annotations

import argparse
import math
import pathlib

import torch

from orthocore.attacks import ATTACKS, PAPER_ATTACKS, attack_names
from orthocore.cli._arguments import DefaultsHelpFormatter, add_device_argument, int_at_least


def parse_eps(text: str) -> tuple[float, ...]:
    """An ε grid from ``start:stop:count`` (``count`` evenly spaced values, both ends
    included) or a comma-separated list; values are fractions of the [0, 1] range."""
    try:
        if ":" in text:
            start, stop, count = text.split(":")
            start, stop, count = float(start), float(stop), int(count)
            if count < 1 or stop < start:
                raise ValueError
            values = torch.linspace(start, stop, count, dtype=torch.float64).tolist()
        else:
            values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--eps expects start:stop:count (start <= stop, count >= 1) or a comma list, got {text!r}"
        ) from None
    if not values or any(not math.isfinite(v) or v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"--eps values must be finite and >= 0, got {text!r}")
    return tuple(values)


def parse_attacks(text: str) -> tuple[str, ...]:
    """Comma-separated attack names, each one of :data:`orthocore.attacks.ATTACKS`."""
    try:
        return attack_names([name.strip().lower() for name in text.split(",") if name.strip()])
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def cmd_attack(args: argparse.Namespace) -> int:
    """Transfer evaluation: craft on --source, fooling ratios on it and every --target."""
    from orthocore.evaluate import TransferConfig, transfer_evaluation

    config = TransferConfig(
        attacks=args.attacks, eps=args.eps, n_images=args.n_images, seed=args.seed, batch_size=args.batch_size
    )
    missing = [path for path in [args.source, *args.target] if not pathlib.Path(path).is_file()]
    if missing:
        raise SystemExit(f"orthocore attack: checkpoint not found: {', '.join(missing)}")
    from orthocore import data, distributed
    from orthocore.checkpoint import load_model

    device = distributed.device(args.device)
    source_name, *target_names = model_names([args.source, *args.target])
    dataset = data.open_dataset(args.data, "test")
    source = load_model(args.source, map_location=device, data=dataset)
    targets = {name: load_model(path, map_location=device, data=dataset) for name, path in zip(target_names, args.target)}
    table = transfer_evaluation(source, targets, dataset, config, source_name=source_name, device=device,
                                progress=not args.no_progress and distributed.world().main)  # fmt: skip
    if not distributed.world().main:  # every process attacked its share; rank 0 has the whole table
        return 0
    print(table.format())
    if args.out:
        print(f"wrote {table.to_csv(args.out + '.csv')} and {table.to_json(args.out + '.json')}")
    return 0


def cmd_defend(args: argparse.Namespace) -> int:
    import dataclasses

    from orthocore import distributed
    from orthocore._io import atomic_write_json, atomic_write_text
    from orthocore.checkpoint import load_model
    from orthocore.data import open_dataset
    from orthocore.defenses import paper_variants
    from orthocore.evaluate.defenses import defense_evaluation
    from orthocore.report import defense_table, markdown_table

    device = distributed.device(args.device)
    dataset = open_dataset(args.data, "test")  # bad data fails before any model is read
    source = load_model(args.source, device, data=dataset)
    target = load_model(args.target, device, data=dataset)
    # named together, so that runs/k2/model.ckpt and runs/m/model.ckpt are k2/model and m/model
    target_name, *names = model_names([args.target, *args.orthogonal])
    orthogonal = {name: load_model(path, device, data=dataset) for name, path in zip(names, args.orthogonal)}
    rows = defense_evaluation(
        source, target, paper_variants(), orthogonal, dataset, attacks=args.attacks, eps=args.eps,
        n_images=args.n_images, seed=args.seed, batch_size=args.batch_size, target_name=target_name,
        device=device, progress=not args.no_progress and distributed.world().main,
    )  # fmt: skip
    if not distributed.world().main:  # every process attacked its share; rank 0 has every row
        return 0
    records = [dataclasses.asdict(row) for row in rows]
    table = markdown_table(*defense_table(records))
    print(table)
    if args.out:
        atomic_write_text(f"{args.out}.md", table + "\n")
        atomic_write_json(f"{args.out}.json", {"source": args.source, "target": args.target,
                                              "orthogonal": args.orthogonal, "rows": records})  # fmt: skip
        print(f"wrote {args.out}.md and {args.out}.json")
    return 0


def model_names(paths: list[str]) -> list[str]:
    """Table column names for checkpoints: the fewest trailing path parts (suffix dropped)
    that tell them apart — ``runs/k/model.ckpt`` and ``runs/m/model.ckpt`` become
    ``k/model`` and ``m/model`` — numbered only where two paths are the same."""
    parts = [pathlib.Path(path).with_suffix("").parts for path in paths]
    if not parts:
        return []
    for depth in range(1, max(len(p) for p in parts) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return [f"{name}#{i}" for i, name in enumerate(names)]


def _add_attacks_argument(parser) -> None:
    parser.add_argument(
        "--attacks", type=parse_attacks, default=PAPER_ATTACKS,
        help=f"comma-separated, from {','.join(ATTACKS)} (default {','.join(PAPER_ATTACKS)})",
    )  # fmt: skip


def _add_attack_parser(commands) -> None:
    parser = commands.add_parser("attack", help="transfer attacks: craft on a source, fool targets",
                                 formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--source", required=True, help="checkpoint of the model the attacks see")
    parser.add_argument("--target", action="append", default=[], help="checkpoint of a target (repeatable)")
    _add_attacks_argument(parser)
    parser.add_argument(
        "--eps", type=parse_eps, default=parse_eps("0.005:0.08:16"),
        help="start:stop:count or a comma list, fractions of [0, 1] (default 0.005:0.08:16)",
    )  # fmt: skip
    parser.add_argument("--n-images", type=int_at_least(1), default=1000, help="images evaluated (default 1000)")
    parser.add_argument("--seed", type=int_at_least(0), default=0, help="seeds the sample and the attacks")
    parser.add_argument("--batch-size", type=int_at_least(1), default=128, help="clean images per batch")
    parser.add_argument("--data", default="digits", help="'digits' (default), fashion-mnist[:PATH], mnist:PATH, cifar10:PATH, folder:PATH or PATH (its test split)")
    add_device_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress report")
    parser.add_argument("--out", default=None, help="write OUT.csv and OUT.json")
    parser.set_defaults(func=cmd_attack, distributed=True, writes="file")


def _add_defend_parser(commands) -> None:
    parser = commands.add_parser("defend", help="Table III: defenses in front of a target vs orthogonal models",
                                 formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--source", required=True, help="checkpoint of the model the attacks are crafted on")
    parser.add_argument("--target", required=True, help="checkpoint of the ordinary model the defenses protect")
    parser.add_argument("--orthogonal", action="append", default=[], help="checkpoint of an orthogonal model (repeatable)")
    parser.add_argument("--data", default="digits", help="'digits' (default), fashion-mnist[:PATH], mnist:PATH, cifar10:PATH, folder:PATH or PATH")
    _add_attacks_argument(parser)
    parser.add_argument("--eps", type=parse_eps, default=(0.03, 0.05), help="the two ε of Table III (default 0.03,0.05)")
    parser.add_argument("--n-images", type=int_at_least(1), default=1000, help="images evaluated (default 1000)")
    parser.add_argument("--seed", type=int_at_least(0), default=0, help="seeds the sample and the attacks")
    parser.add_argument("--batch-size", type=int_at_least(1), default=128, help="clean images per batch")
    add_device_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress report")
    parser.add_argument("--out", default=None, help="write OUT.md and OUT.json")
    parser.set_defaults(func=cmd_defend, distributed=True, writes="file")


def add_parsers(commands) -> None:
    _add_attack_parser(commands)
    _add_defend_parser(commands)
