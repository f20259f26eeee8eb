"""The ``orthocore`` command line: a thin argparse layer over library calls."""

from __future__ import annotations

import argparse
import pickle
import math
import pathlib
import sys
import time

import torch

from orthocore import dispatch
from orthocore import ops


def _check_backends(device: torch.device) -> list[str]:
    """Runs normalized_dot forward+backward on every backend that can run on ``device``
    and compares it with the reference; returns one report line per backend."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(64, 3 * 32 * 32, generator=generator).to(device).requires_grad_()
    b = torch.randn(64, 3 * 32 * 32, generator=generator).to(device)
    expected = ops.normalized_dot_reference(a, b)
    (expected_grad,) = torch.autograd.grad(expected.sum(), a)
    lines = []
    for name, status in dispatch.backends().items():
        if not status.available or not dispatch.runs_on(name, device):
            continue
        with dispatch.use_backend(name):
            start = time.perf_counter()
            delta = ops.normalized_dot(a, b)
            (grad,) = torch.autograd.grad(delta.sum(), a)
            elapsed = time.perf_counter() - start
        error = max((delta - expected).abs().max().item(), (grad - expected_grad).abs().max().item())
        verdict = "ok" if error < 1e-4 else "MISMATCH"
        lines.append(f"  {name:<10} {device.type:<5} max|err| {error:.1e}  {elapsed * 1e3:7.2f} ms  {verdict}")
    return lines


def cmd_backends(args: argparse.Namespace) -> int:
    print(f"orthocore backends (torch {torch.__version__}):")
    for name, status in dispatch.backends().items():
        print(f"  {name:<10} {'available' if status.available else 'unavailable'}  {status.reason}")
    if args.check:
        devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
        print("normalized_dot forward+backward, 64 x 3x32x32, against the reference:")
        lines = [line for device in devices for line in _check_backends(device)]
        print("\n".join(lines))
        return 1 if any("MISMATCH" in line for line in lines) else 0
    return 0


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
    from orthocore.train import accuracy

    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
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
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.set_defaults(func=cmd_similarity)
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
    from orthocore.attacks import ATTACKS

    names = tuple(name.strip().lower() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in ATTACKS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"--attacks: unknown {unknown or text!r}; choose from {', '.join(ATTACKS)}")
    return names


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def cmd_attack(args: argparse.Namespace) -> int:
    """Transfer evaluation: craft on --source, fooling ratios on it and every --target."""
    from orthocore.evaluate import TransferConfig, transfer_evaluation

    config = TransferConfig(
        attacks=args.attacks, eps=args.eps, n_images=args.n_images, seed=args.seed, batch_size=args.batch_size
    )
    missing = [path for path in [args.source, *args.target] if not pathlib.Path(path).is_file()]
    if missing:
        raise SystemExit(f"orthocore attack: checkpoint not found: {', '.join(missing)}")
    from orthocore import data
    from orthocore.checkpoint import load_model

    device = torch.device(args.device)
    source_name, *target_names = model_names([args.source, *args.target])
    source = load_model(args.source, map_location=device)
    targets = {name: load_model(path, map_location=device) for name, path in zip(target_names, args.target)}
    dataset = data.load_dataset(args.dataset, split="test", root=args.data_root)
    table = transfer_evaluation(source, targets, dataset, config, source_name=source_name, device=device)
    print(table.format())
    if args.out:
        print(f"wrote {table.to_csv(args.out + '.csv')} and {table.to_json(args.out + '.json')}")
    return 0


def model_names(paths: list[str]) -> list[str]:
    """Table column names for checkpoints: their file stems, numbered where two collide."""
    stems = [pathlib.Path(path).stem for path in paths]
    return [stem if stems.count(stem) == 1 else f"{stem}#{i}" for i, stem in enumerate(stems)]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orthocore", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    backends_parser = commands.add_parser("backends", help="list the kernel backends and check them")
    backends_parser.add_argument("--check", action="store_true", help="run every backend against the reference")
    backends_parser.set_defaults(func=cmd_backends)
    demo_parser = commands.add_parser("demo", help="the main job on the shipped default data")
    demo_parser.set_defaults(func=cmd_backends, check=True)
    _add_train_parser(commands)
    _add_similarity_parser(commands)
    attack_parser = commands.add_parser("attack", help="transfer attacks: craft on a source, fool targets")
    attack_parser.add_argument("--source", required=True, help="checkpoint of the model the attacks see")
    attack_parser.add_argument("--target", action="append", default=[], help="checkpoint of a target (repeatable)")
    attack_parser.add_argument("--attacks", type=parse_attacks, default=("fgsm", "ifgsm", "pgd", "mifgsm"),
                               help="comma-separated: fgsm,ifgsm,pgd,mifgsm,difgsm")  # fmt: skip
    attack_parser.add_argument("--eps", type=parse_eps, default=parse_eps("0.005:0.08:16"),
                               help="start:stop:count or a comma list (fractions of [0, 1]); default 0.005:0.08:16")  # fmt: skip
    attack_parser.add_argument("--n-images", type=_positive_int, default=1000, help="images evaluated (default 1000)")
    attack_parser.add_argument("--seed", type=int, default=0)
    attack_parser.add_argument("--batch-size", type=_positive_int, default=128)
    attack_parser.add_argument("--dataset", default="cifar10", help="dataset of orthocore.data (test split)")
    attack_parser.add_argument("--data-root", default=None, help="folder of the dataset files")
    attack_parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    attack_parser.add_argument("--out", default=None, help="write OUT.csv and OUT.json")
    attack_parser.set_defaults(func=cmd_attack)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError, pickle.UnpicklingError) as error:  # bad input: say what, no traceback
        print(f"orthocore {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
