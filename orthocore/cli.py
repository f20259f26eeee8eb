"""The ``orthocore`` command line: a thin argparse layer over library calls."""

from __future__ import annotations

import argparse
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


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return value

    return parse


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


def _add_attack_parser(commands) -> None:
    parser = commands.add_parser("attack", help="transfer attacks: craft on a source, fool targets")
    parser.add_argument("--source", required=True, help="checkpoint of the model the attacks see")
    parser.add_argument("--target", action="append", default=[], help="checkpoint of a target (repeatable)")
    parser.add_argument(
        "--attacks", type=parse_attacks, default=("fgsm", "ifgsm", "pgd", "mifgsm"),
        help="comma-separated: fgsm,ifgsm,pgd,mifgsm,difgsm (default fgsm,ifgsm,pgd,mifgsm)",
    )  # fmt: skip
    parser.add_argument(
        "--eps", type=parse_eps, default=parse_eps("0.005:0.08:16"),
        help="start:stop:count or a comma list, fractions of [0, 1] (default 0.005:0.08:16)",
    )  # fmt: skip
    parser.add_argument("--n-images", type=_int_at_least(1), default=1000, help="images evaluated (default 1000)")
    parser.add_argument("--seed", type=_int_at_least(0), default=0, help="seeds the sample and the attacks")
    parser.add_argument("--batch-size", type=_int_at_least(1), default=128, help="clean images per batch")
    parser.add_argument("--dataset", default="cifar10", help="dataset of orthocore.data (test split)")
    parser.add_argument("--data-root", default=None, help="folder of the dataset files")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default=None, help="write OUT.csv and OUT.json")
    parser.set_defaults(func=cmd_attack)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orthocore", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    backends_parser = commands.add_parser("backends", help="list the kernel backends and check them")
    backends_parser.add_argument("--check", action="store_true", help="run every backend against the reference")
    backends_parser.set_defaults(func=cmd_backends)
    demo_parser = commands.add_parser("demo", help="the main job on the shipped default data")
    demo_parser.set_defaults(func=cmd_backends, check=True)
    _add_attack_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
