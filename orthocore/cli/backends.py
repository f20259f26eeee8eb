"""``orthocore backends``: which kernel backends this installation has, checked against
the reference."""

from __future__ import annotations

import argparse
import time

import torch

from orthocore import dispatch, ops


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


def add_parsers(commands) -> None:
    parser = commands.add_parser("backends", help="list the kernel backends and check them")
    parser.add_argument("--check", action="store_true", help="run every backend against the reference")
    parser.set_defaults(func=cmd_backends)
