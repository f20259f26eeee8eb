"""``orthocore security``: the security evaluation of defended models, with the attacker's
surrogates it needs trained by the defenders' own method, and the verdicts."""

from __future__ import annotations

import argparse
import dataclasses
import pathlib

from orthocore.cli._arguments import (
    MODEL,
    DefaultsHelpFormatter,
    add_config_arguments,
    add_device_argument,
    config_from_arguments,
    int_at_least,
    missing_model_files,
)
from orthocore.cli.attack import model_names
from orthocore.evaluate.settings import SecurityConfig, SurrogateSettings


def _method(args: argparse.Namespace):
    """The defenders' training configuration: the first target's recorded one, with
    ``--data``, ``--lambda`` and ``--epochs`` overriding its data, λ and training length."""
    from orthocore.checkpoint import read_checkpoint
    from orthocore.model_specs import parse_model_spec
    from orthocore.train import TrainConfig

    # the adaptive surrogates are trained by the defenders' method, which only an orthocore checkpoint records
    first = args.target[0]
    recorded = read_checkpoint(first)["extra"].get("config") if parse_model_spec(first).kind == "checkpoint" else None
    if recorded is None:
        raise ValueError(f"target: the first target, {first!r}, records no training configuration; it must be a "
                         "model trained by orthocore (the others, the baseline and the reference may be any model)")
    method = TrainConfig.from_dict(recorded)
    changes = {"progress": not args.no_progress, "data": args.data or method.data}
    if args.lam is not None:
        changes["lam"] = args.lam
    if args.epochs is not None:
        changes.update(max_epochs=args.epochs, eval_every=min(method.eval_every, args.epochs))
    return dataclasses.replace(method, **changes)


def _names(paths: list[str]) -> list[str]:
    """Table names for checkpoints: the run folder's name for a trainer's ``model.ckpt``,
    else the file's stem (numbered where two collide)."""
    return model_names([pathlib.Path(p).parent.name if pathlib.Path(p).name == "model.ckpt" else p for p in paths])


def cmd_security(args: argparse.Namespace) -> int:
    """Runs the protocol and writes OUT/security.json and OUT/security.md."""
    from orthocore import distributed
    from orthocore._io import atomic_write_json, atomic_write_text
    from orthocore.data import open_dataset
    from orthocore.evaluate.security import (
        defended_name,
        security_evaluation,
        with_defenses,
    )
    from orthocore.evaluate.surrogates import attacker_sources, train_surrogates
    from orthocore.evaluate.verdicts import format_verdicts, security_verdicts
    from orthocore.model_specs import open_model
    from orthocore.workers import Workers, worker_count

    config = config_from_arguments(SecurityConfig, args)
    attacker = config_from_arguments(SurrogateSettings, args)
    attacker.check_surrogates()
    device = distributed.device(args.device)
    baselines = [args.baseline] if args.baseline else []
    defenses = config.security_defenses if baselines else []
    if args.security_defenses and not baselines:
        raise ValueError("defense: give --baseline, the model the defenses are put in front of")
    missing = missing_model_files([args.reference, *args.target, *args.surrogate, *baselines])
    if missing:
        raise ValueError(f"model file not found: {', '.join(missing)}")
    method = _method(args)
    dataset = open_dataset(method.data, "test")

    def load(path):  # every model is checked against the data: the user's before any surrogate is trained
        return open_model(path, device, data=dataset)

    reference = load(args.reference)
    names = _names([*args.target, *baselines])
    targets = {name: load(path) for name, path in zip(names, [*args.target, *baselines])}
    targets = with_defenses(targets, names[-1], defenses) if defenses else targets
    given = [load(path) for path in args.surrogate]
    out = pathlib.Path(args.out)
    with Workers(worker_count(args.workers, device)) as workers:
        if workers.count > 1:  # the workers' progress bars would overwrite each other
            method = dataclasses.replace(method, progress=False)
        surrogates = train_surrogates(method, args.reference, out / "surrogates", workers=workers,
                                      **attacker.surrogate_counts())  # fmt: skip
        given += [load(path) for path in surrogates.ordinary]
        attackers = attacker_sources(
            dict(zip(_names([*args.surrogate, *surrogates.ordinary]), given)),
            [load(path) for path in surrogates.adaptive], [load(path) for path in surrogates.adaptive_without_k],
        )  # fmt: skip
        result = security_evaluation(targets, reference, dataset, config, sources=attackers.sources, device=device,
                                     workers=workers)  # fmt: skip
    if not distributed.world().main:  # every process attacked its share; rank 0 has every outcome
        return 0
    print(result.format())
    verdicts = []
    if baselines:
        verdicts = security_verdicts([result], baseline=names[-1], defended=names[: len(args.target)],
                                     surrogates=attackers.surrogates, adaptive=attackers.adaptive,
                                     adaptive_without_k=attackers.adaptive_without_k,
                                     transformed=[defended_name(names[-1], label) for label in defenses])  # fmt: skip
        print("\nverdicts (fooling ratio averaged over the ε grid):\n" + format_verdicts(verdicts))
    atomic_write_json(out / "security.json", {
        "rows": result.rows(), "diagnostics": result.diagnostics, "metadata": result.metadata,
        "verdicts": [dataclasses.asdict(v) for v in verdicts],
        # relative to the folder, which can then move or be compared with another run's
        "surrogates": {kind: [str(pathlib.Path(path).resolve().relative_to(out.resolve())) for path in paths]
                       for kind, paths in dataclasses.asdict(surrogates).items()},
    })  # fmt: skip
    atomic_write_text(out / "security.md", result.format() + "\n\n" + format_verdicts(verdicts) + "\n")
    print(f"\nwrote {out / 'security.json'} and {out / 'security.md'}")
    return 0


def add_parsers(commands) -> None:
    parser = commands.add_parser(
        "security", help="white-box, query, transfer and adaptive attacks on defended models, with verdicts",
        formatter_class=DefaultsHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--target", action="append", required=True, help="a defended model (repeatable); the first one an orthocore checkpoint, whose recorded training the adaptive surrogates repeat")
    parser.add_argument("--baseline", help=f"the ordinary model the verdicts compare the targets with: {MODEL}")
    parser.add_argument("--reference", required=True, help="the public reference K, given as --baseline is")
    parser.add_argument("--surrogate", action="append", default=[], help="an attacker's surrogate, given as --baseline is (repeatable)")
    add_config_arguments(parser, SurrogateSettings)  # --train-surrogates, --adaptive, --adaptive-without-k
    parser.add_argument("--lambda", dest="lam", type=float, default=None,
                        help="λ of the adaptive surrogates (default: the first target's recorded λ)")  # fmt: skip
    parser.add_argument("--epochs", type=int_at_least(1), default=None,
                        help="epochs of each surrogate (default: the first target's recorded max_epochs)")  # fmt: skip
    parser.add_argument("--data", help="'digits', fashion-mnist[:PATH], mnist:PATH, cifar10:PATH, folder:PATH or PATH (default: the target's recorded data)")
    add_config_arguments(parser, SecurityConfig)  # --eps, --n-images, --seed, the budgets, --defense (with --baseline)
    parser.add_argument("--out", required=True, help="folder for the surrogates and security.json / security.md")
    parser.add_argument("--workers", type=int_at_least(0), default=0,
                        help="surrogates trained and attacks run at once, one process each (0: one per core on a CPU)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars while training surrogates")
    add_device_argument(parser)
    parser.set_defaults(func=cmd_security, distributed=True, writes="folder")
