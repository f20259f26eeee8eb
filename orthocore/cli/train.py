"""``orthocore train`` and ``orthocore similarity``: Algorithm 1 and Tables I/II rows."""

from __future__ import annotations

import argparse

from orthocore.cli.attack import add_device_argument
from orthocore.runtime import resolve_device


def cmd_train(args: argparse.Namespace) -> int:
    from orthocore.train import TrainConfig, resume, train

    if args.resume:
        result = resume(args.out, progress=not args.no_progress)
    else:
        config = TrainConfig(
            arch=args.arch,
            data=args.data,
            out=args.out,
            lam=args.lam,
            penalty=args.penalty,
            references=args.reference,
            max_epochs=args.max_epochs,
            eval_every=args.eval_every,
            batch_size=args.batch_size,
            optimizer=args.optimizer,
            lr=args.lr,
            momentum=args.momentum,
            weight_decay=args.weight_decay,
            init=args.init,
            weights=args.weights,
            finetune=args.finetune,
            augment=args.augment,
            cache=args.cache,
            seed=args.seed,
            device=args.device,
            progress=not args.no_progress,
        )
        result = train(config)
    best = max(result.history, key=lambda item: item[1]) if result.history else None
    print(f"trained {result.epochs} epochs; validation accuracy by epoch: "
          + ", ".join(f"{epoch}: {acc:.2f}%" for epoch, acc in result.history))
    if best:
        print(f"best {best[1]:.2f}% at epoch {best[0]}; final model {result.out / 'model.ckpt'}")
    return 0


def cmd_similarity(args: argparse.Namespace) -> int:
    from orthocore import data, gradients
    from orthocore.checkpoint import load_model
    from orthocore.metrics import accuracy

    device = resolve_device(args.device)
    model_a, model_b = load_model(args.model_a, device), load_model(args.model_b, device)
    dataset = data.open_dataset(args.data, args.split)
    stats = gradients.similarity(model_a, model_b, dataset, batch_size=args.batch_size, device=device)
    acc_a, acc_b = accuracy(model_a, dataset, device), accuracy(model_b, dataset, device)
    print(f"{'model-1':<28} {'model-2':<28} {'acc-1':>7} {'acc-2':>7}  {'delta (mean ± std)':<18}  {'|delta| (mean ± std)':<20}  n")
    print(
        f"{args.model_a:<28} {args.model_b:<28} {acc_a:6.2f}% {acc_b:6.2f}%  "
        f"{stats.mean:+.3f} ± {stats.std:.3f}    {stats.abs_mean:.3f} ± {stats.abs_std:.3f}         {stats.count}"
    )
    return 0


def _add_train_parser(commands) -> None:
    from orthocore import models
    from orthocore.train.config import CACHES, OPTIMIZERS, TrainConfig
    from orthocore.train.objective import PENALTIES

    defaults = TrainConfig()
    parser = commands.add_parser("train", help="train an ordinary (lambda 0) or orthogonal model (Algorithm 1)")
    parser.add_argument("--arch", default=defaults.arch, choices=models.available(), help="model architecture")
    parser.add_argument("--data", default=defaults.data, help="'digits' (default), cifar10:PATH, folder:PATH or PATH")
    parser.add_argument("--out", default=defaults.out, help="run folder (checkpoints, metrics.jsonl, run.json)")
    parser.add_argument("--lambda", dest="lam", type=float, default=defaults.lam,
                        help="weight of the orthogonality penalty; 0 = ordinary training (digits CNN: 1-3)")
    parser.add_argument("--penalty", default=defaults.penalty, choices=list(PENALTIES), help="penalty on delta")
    parser.add_argument("--reference", action="append", default=[], help="reference checkpoint (repeatable)")
    parser.add_argument("--max-epochs", type=int, default=defaults.max_epochs)
    parser.add_argument("--eval-every", type=int, default=defaults.eval_every,
                        help="epochs between validation checks; stop when accuracy stops improving")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--optimizer", choices=OPTIMIZERS, help="default: the first reference's, else adam")
    parser.add_argument("--lr", type=float)
    parser.add_argument("--momentum", type=float)
    parser.add_argument("--weight-decay", type=float)
    parser.add_argument("--init", default=defaults.init, choices=["default", "xavier"])
    parser.add_argument("--weights", help="ImageNet models: local pretrained torchvision state_dict")
    parser.add_argument("--finetune", action="store_true", help="train only the re-initialised last FC layer")
    parser.add_argument("--augment", action="store_true", help="CIFAR-10 random crop and flip")
    parser.add_argument("--cache", default=defaults.cache, choices=CACHES, help="where reference gradients are kept")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--device", default=defaults.device, choices=["auto", "cpu", "cuda"])
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=cmd_train)


def _add_similarity_parser(commands) -> None:
    parser = commands.add_parser("similarity", help="mean ± std of delta between two models (Table I row)")
    parser.add_argument("model_a", help="checkpoint of model 1 (the reference)")
    parser.add_argument("model_b", help="checkpoint of model 2")
    parser.add_argument("--data", default="digits", help="'digits' (default), cifar10:PATH, folder:PATH or PATH")
    parser.add_argument("--split", default="val", choices=["train", "val"])
    parser.add_argument("--batch-size", type=int, default=256)
    add_device_argument(parser)
    parser.set_defaults(func=cmd_similarity)


def cmd_export(args: argparse.Namespace) -> int:
    from orthocore.checkpoint import export_safetensors

    export_safetensors(args.checkpoint, args.out)
    print(f"wrote {args.out}")
    return 0


def _add_export_parser(commands) -> None:
    parser = commands.add_parser("export", help="write a checkpoint as a .safetensors file (weights + metadata)")
    parser.add_argument("checkpoint", help="checkpoint to convert (.ckpt or .safetensors)")
    parser.add_argument("out", help="destination, ending in .safetensors")
    parser.set_defaults(func=cmd_export)


def add_parsers(commands) -> None:
    _add_train_parser(commands)
    _add_similarity_parser(commands)
    _add_export_parser(commands)
