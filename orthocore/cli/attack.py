"""``orthocore attack`` (Figs. 5/6: transfer fooling ratios) and ``orthocore defend``
(Table III: defenses vs orthogonal models)."""

from __future__ import annotations

import argparse
import pathlib

from orthocore.cli._arguments import (
    MODEL,
    DefaultsHelpFormatter,
    add_config_arguments,
    add_device_argument,
    config_from_arguments,
    missing_model_files,
)
from orthocore.evaluate.settings import DefenseConfig, TransferConfig


def cmd_attack(args: argparse.Namespace) -> int:
    """Transfer evaluation: craft on --source, fooling ratios on it and every --target."""
    from orthocore.evaluate import TransferConfig, transfer_evaluation

    config = config_from_arguments(TransferConfig, args)
    missing = missing_model_files([args.source, *args.target])
    if missing:
        raise SystemExit(f"orthocore attack: model file not found: {', '.join(missing)}")
    from orthocore import data, distributed
    from orthocore.model_specs import open_model

    device = distributed.device(args.device)
    source_name, *target_names = model_names([args.source, *args.target])
    dataset = data.open_dataset(args.data, "test")
    source = open_model(args.source, device, data=dataset, name="source")
    targets = {name: open_model(path, device, data=dataset, name="target") for name, path in zip(target_names, args.target)}
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
    from orthocore.data import open_dataset
    from orthocore.defenses import paper_variants
    from orthocore.evaluate.defenses import defense_evaluation
    from orthocore.evaluate.settings import DefenseConfig
    from orthocore.model_specs import open_model
    from orthocore.report import defense_table, markdown_table

    config = config_from_arguments(DefenseConfig, args)
    device = distributed.device(args.device)
    dataset = open_dataset(args.data, "test")  # bad data fails before any model is read
    source = open_model(args.source, device, data=dataset, name="source")
    target = open_model(args.target, device, data=dataset, name="target")
    # named together, so that runs/k2/model.ckpt and runs/m/model.ckpt are k2/model and m/model
    target_name, *names = model_names([args.target, *args.orthogonal])
    orthogonal = {name: open_model(path, device, data=dataset, name="orthogonal") for name, path in zip(names, args.orthogonal)}
    rows = defense_evaluation(source, target, paper_variants(), orthogonal, dataset, config, target_name=target_name,
                              device=device, progress=not args.no_progress and distributed.world().main)  # fmt: skip
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
    """Table column names for models (checkpoints or model specs): the fewest trailing path parts (suffix dropped)
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


def _add_attack_parser(commands) -> None:
    parser = commands.add_parser("attack", help="transfer attacks: craft on a source, fool targets",
                                 formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--source", required=True, help=f"the model the attacks see: {MODEL}")
    parser.add_argument("--target", action="append", default=[], help="a target model, given as --source is (repeatable)")
    add_config_arguments(parser, TransferConfig)  # one option per field: --attacks, --eps, --n-images, ...
    parser.add_argument("--data", default="digits", help="'digits' (default), fashion-mnist[:PATH], mnist:PATH, cifar10:PATH, folder:PATH or PATH (its test split)")
    add_device_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress report")
    parser.add_argument("--out", default=None, help="write OUT.csv and OUT.json")
    parser.set_defaults(func=cmd_attack, distributed=True, writes="file")


def _add_defend_parser(commands) -> None:
    parser = commands.add_parser("defend", help="Table III: defenses in front of a target vs orthogonal models",
                                 formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--source", required=True, help=f"the model the attacks are crafted on: {MODEL}")
    parser.add_argument("--target", required=True, help="the ordinary model the defenses protect, given as --source is")
    parser.add_argument("--orthogonal", action="append", default=[], help="an orthogonal model, given as --source is (repeatable)")
    parser.add_argument("--data", default="digits", help="'digits' (default), fashion-mnist[:PATH], mnist:PATH, cifar10:PATH, folder:PATH or PATH")
    add_config_arguments(parser, DefenseConfig)  # one option per field: --attacks, --eps, --n-images, ...
    add_device_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress report")
    parser.add_argument("--out", default=None, help="write OUT.md and OUT.json")
    parser.set_defaults(func=cmd_defend, distributed=True, writes="file")


def add_parsers(commands) -> None:
    _add_attack_parser(commands)
    _add_defend_parser(commands)
