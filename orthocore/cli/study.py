"""``orthocore demo``, ``orthocore run`` and ``orthocore report``: the whole study."""

from __future__ import annotations

import argparse

from orthocore.cli._arguments import add_config_arguments, overrides_of, seed_list
from orthocore.evaluate.settings import EvaluationSettings


def _run_and_summarise(config, args: argparse.Namespace) -> int:
    from orthocore import distributed
    from orthocore.report import format_summary
    from orthocore.study import run_study

    results = run_study(config, progress=not args.no_progress)
    if not distributed.world().main:
        return 0
    print(format_summary(results))
    print(f"\nreport: {config.out}/report.html (and report.md, results.json, figures/)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from orthocore.study import demo_config

    config = demo_config(args.out, args.data)
    if args.seeds is not None:
        config.seeds = args.seeds
    if args.workers is not None:
        config.workers = args.workers
    return _run_and_summarise(config, args)


def cmd_run(args: argparse.Namespace) -> int:
    import dataclasses

    from orthocore.study import StudyConfig

    config = dataclasses.replace(StudyConfig.from_toml(args.config), **overrides_of(EvaluationSettings, args))
    if args.out:
        config.out = args.out
    if args.workers is not None:
        config.workers = args.workers
    return _run_and_summarise(config, args)


def cmd_report(args: argparse.Namespace) -> int:
    from orthocore.report import write_report

    paths = write_report(args.run_dir)
    print(f"wrote {paths['html']} and {paths['markdown']}")
    return 0


def _workers_flag(parser) -> None:
    parser.add_argument("--workers", type=int, metavar="N",
                        help="independent jobs (training runs, attacks) run at once, one process each "
                        "(default: the configuration's; 0 = one per core on a CPU)")  # fmt: skip


def add_parsers(commands) -> None:
    demo = commands.add_parser("demo", help="the paper's whole study and the security evaluation, 3 seeds: on the "
                               "shipped digits data (about 4½ minutes on 2 cores) or on Fashion-MNIST")  # fmt: skip
    demo.add_argument("--data", default="digits", choices=["digits", "fashion-mnist"],
                      help="digits, or the full Fashion-MNIST (apt-get install dataset-fashion-mnist, or "
                      "$ORTHOCORE_DATA/fashion-mnist)")  # fmt: skip
    demo.add_argument("--out", help="run directory (default: runs/demo, runs/demo-fashion-mnist; re-running reuses "
                      "finished work)")  # fmt: skip
    demo.add_argument("--seeds", type=seed_list, metavar="S,S,...",
                      help="seeds to run, comma-separated (default: 0,1,2; one seed takes a third of the time)")
    _workers_flag(demo)
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    demo.set_defaults(func=cmd_demo, distributed=True)
    run = commands.add_parser("run", help="the study on your data and models, from a TOML configuration")
    run.add_argument("--config", required=True, help="TOML file whose keys are orthocore.study.StudyConfig's")
    run.add_argument("--out", help="run directory (overrides the configuration's)")
    _workers_flag(run)
    add_config_arguments(run, EvaluationSettings, overrides=True)  # every evaluation setting, e.g. --n-images
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.set_defaults(func=cmd_run, distributed=True)
    report = commands.add_parser("report", help="rebuild report.html / report.md / figures of a finished run")
    report.add_argument("run_dir", help="a run directory holding results.json")
    report.set_defaults(func=cmd_report)
