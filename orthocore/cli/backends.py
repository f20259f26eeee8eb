"""``orthocore backends``: which kernel backends this installation has, checked against
the reference."""

from __future__ import annotations

import argparse
import time

import torch

from orthocore import dispatch


def _check_backends(device: torch.device) -> list[str]:
    """Runs every registered op's sample (:class:`orthocore.dispatch.Sample`) on every
    backend that can run it on ``device`` and compares it with the reference; returns one
    report line per (op, backend)."""
    lines = []
    for backends in dispatch.registered().values():
        if backends.sample is None:
            continue
        generator = torch.Generator().manual_seed(0)
        sample = backends.sample(device, lambda *shape, rand=torch.randn: rand(*shape, generator=generator).to(device))
        with dispatch.use_backend("reference"):
            expected = sample.run()
        for name in backends.compiled_for(device):
            with dispatch.use_backend(name):
                start = time.perf_counter()
                outputs = sample.run()
                elapsed = time.perf_counter() - start
            error = max((got - want).abs().max().item() for got, want in zip(outputs, expected))
            verdict = "ok" if error <= sample.tolerance else "MISMATCH"
            lines.append(f"  {sample.label:<40} {name:<7} {device.type:<5} max|err| {error:.1e}  "
                         f"{elapsed * 1e3:8.2f} ms  {verdict}")  # fmt: skip
    return lines


def cmd_backends(args: argparse.Namespace) -> int:
    print(f"orthocore backends (torch {torch.__version__}):")
    for name, status in dispatch.backends().items():
        print(f"  {name:<10} {'available' if status.available else 'unavailable'}  {status.reason}")
    if args.check:
        devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
        print("every op on every backend, against the reference:")
        lines = [line for device in devices for line in _check_backends(device)]
        print("\n".join(lines))
        return 1 if any("MISMATCH" in line for line in lines) else 0
    return 0


def add_parsers(commands) -> None:
    parser = commands.add_parser("backends", help="list the kernel backends and check them")
    parser.add_argument("--check", action="store_true", help="run every backend against the reference")
    parser.set_defaults(func=cmd_backends)
