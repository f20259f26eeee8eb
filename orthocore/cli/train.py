"""``orthocore train`` and ``orthocore similarity``: Algorithm 1 and Tables I/II rows."""

from __future__ import annotations

import argparse

from orthocore.cli._arguments import (
    MODEL,
    DefaultsHelpFormatter,
    add_config_arguments,
    add_device_argument,
    config_from_arguments,
    given_arguments,
)


def cmd_train(args: argparse.Namespace) -> int:
    from orthocore import distributed
    from orthocore.train import TrainConfig, resume, train

    if args.resume:
        _check_resume_flags(args)
        result = resume(args.out, progress=not args.no_progress)
    else:
        result = train(config_from_arguments(TrainConfig, args, progress=not args.no_progress))
    if not distributed.world().main:
        return 0
    best = max(result.history, key=lambda item: item[1]) if result.history else None
    print(f"trained {result.epochs} epochs; validation accuracy by epoch: "
          + ", ".join(f"{epoch}: {acc:.2f}%" for epoch, acc in result.history))
    if best:
        print(f"best {best[1]:.2f}% at epoch {best[0]}; final model {result.out / 'model.ckpt'}")
    return 0


def _check_resume_flags(args: argparse.Namespace) -> None:
    """Raises ``ValueError`` naming every flag given with ``--resume`` that contradicts the
    recorded run (a resumed run keeps its recorded configuration)."""
    import pathlib

    from orthocore import distributed
    from orthocore.train.config import TrainConfig
    from orthocore.train.state import load_state

    def recorded_config() -> dict:
        state_path = pathlib.Path(args.out) / "state.pt"
        if not state_path.is_file():
            raise FileNotFoundError(f"resume: no training state at {str(state_path)!r}")
        return load_state(state_path)["config"]

    recorded = distributed.on_main(recorded_config)
    given = given_arguments(TrainConfig, args)
    conflicts = [f"{flag} {value!r} (recorded: {recorded[name]!r})" for name, (flag, value) in given.items()
                 if name not in ("out", "progress") and recorded.get(name) != value]  # fmt: skip
    if conflicts:
        raise ValueError(f"--resume: these flags contradict the run recorded in {args.out!r}: {'; '.join(conflicts)}; "
                         "a resumed run keeps its recorded configuration")


def cmd_similarity(args: argparse.Namespace) -> int:
    from orthocore import data, distributed
    from orthocore.evaluate.similarity import similarity_row
    from orthocore.model_specs import open_model

    device = distributed.device(args.device)
    dataset = data.open_dataset(args.data, args.split)
    model_a, model_b = (open_model(path, device, data=dataset, name=name)
                        for path, name in ((args.model_a, "model_a"), (args.model_b, "model_b")))  # fmt: skip
    row = similarity_row(model_b, model_a, dataset, device, batch_size=args.batch_size, progress=not args.no_progress)
    acc_a, acc_b, stats = similarity_row(model_a, model_a, dataset, device).accuracy, row.accuracy, row.delta
    print(f"{'model-1':<28} {'model-2':<28} {'acc-1':>7} {'acc-2':>7}  {'delta (mean ± std)':<18}  {'|delta| (mean ± std)':<20}  n")
    print(
        f"{args.model_a:<28} {args.model_b:<28} {acc_a:6.2f}% {acc_b:6.2f}%  "
        f"{stats.mean:+.3f} ± {stats.std:.3f}    {stats.abs_mean:.3f} ± {stats.abs_std:.3f}         {stats.count}"
    )
    return 0


def _add_train_parser(commands) -> None:
    from orthocore.train.config import TrainConfig

    parser = commands.add_parser("train", help="train an ordinary (lambda 0) or orthogonal model (Algorithm 1)",
                                 formatter_class=DefaultsHelpFormatter)  # fmt: skip
    add_config_arguments(parser, TrainConfig, skip=("progress",))  # one flag per TrainConfig field
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=cmd_train, distributed=True,
                        resume_hint=lambda args: f"resume with: orthocore train --resume --out {args.out}")  # fmt: skip


def _add_similarity_parser(commands) -> None:
    parser = commands.add_parser("similarity", help="mean ± std of delta between two models (Table I row)")
    parser.add_argument("model_a", help=f"model 1 (the reference): {MODEL}")
    parser.add_argument("model_b", help="model 2, given as model 1 is")
    parser.add_argument("--data", default="digits", help="'digits' (default), fashion-mnist[:PATH], mnist:PATH, cifar10:PATH, folder:PATH or PATH")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"])
    parser.add_argument("--batch-size", type=int, default=256)
    add_device_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress report")
    parser.set_defaults(func=cmd_similarity)


def cmd_export(args: argparse.Namespace) -> int:
    from orthocore.checkpoint import export_safetensors
    from orthocore.model_specs import export_program

    if args.out.endswith(".pt2"):
        export_program(args.checkpoint, args.out)
    else:
        export_safetensors(args.checkpoint, args.out)
    print(f"wrote {args.out}")
    return 0


def _add_export_parser(commands) -> None:
    parser = commands.add_parser("export", help="write a checkpoint as a .safetensors file (weights + metadata) or a torch.export .pt2 program")
    parser.add_argument("checkpoint", help="checkpoint to convert (.ckpt or .safetensors)")
    parser.add_argument("out", help="destination, ending in .safetensors or .pt2")
    parser.set_defaults(func=cmd_export, writes="file")


def add_parsers(commands) -> None:
    _add_train_parser(commands)
    _add_similarity_parser(commands)
    _add_export_parser(commands)
