"""``orthocore backends``: which kernel backends this installation has, checked against
the reference."""

from __future__ import annotations

import argparse
import importlib
import time
from collections.abc import Callable

import torch
from torch import Tensor

from orthocore import dispatch, ops
from orthocore.ops import batch_norm


def _cases(device: torch.device) -> list[tuple[str, str, str, Callable[[], tuple[Tensor, ...]], float]]:
    """Every op on a seeded input: (label, op module, its dispatch table, a call returning
    the outputs to compare, the tolerance on them)."""
    generator = torch.Generator().manual_seed(0)

    def draw(*shape, rand=torch.randn):
        return rand(*shape, generator=generator).to(device)

    a, b = draw(64, 3 * 32 * 32), draw(64, 3 * 32 * 32)
    images, grad = draw(8, 3, 32, 32, rand=torch.rand), draw(8, 3, 32, 32)
    step, eps = torch.full((8,), 0.01, device=device), torch.full((8,), 0.03, device=device)
    x, gy, ggx = draw(8, 4, 5, 5), draw(8, 4, 5, 5), draw(8, 4, 5, 5)
    weight, ggw, ggb = draw(4, rand=torch.rand) + 0.5, draw(4), draw(4)
    mean, invstd = x.mean((0, 2, 3)), (x.var((0, 2, 3), unbiased=False) + 1e-5).rsqrt()

    def normalized_dot():
        leaf = a.clone().requires_grad_()
        delta = ops.normalized_dot(leaf, b)
        return (delta, *torch.autograd.grad(delta.sum(), leaf))

    return [
        ("normalized_dot fwd+bwd, 64 x 3x32x32", "normalized_dot", "FORWARD", normalized_dot, 1e-4),
        ("attack_step, 8 x 3x32x32", "attack_step", "STEP", lambda: ops.attack_step(images, grad, images, step, eps)[:1],
         1e-6),
        ("bit_depth 3 bits, 8 x 3x32x32", "bit_depth", "REDUCE", lambda: (ops.bit_depth(images, 3),), 0.0),
        ("jpeg quality 80, 8 x 3x32x32", "jpeg", "ROUNDTRIP", lambda: (ops.jpeg(images, 80),), 1 / 255 + 1e-6),
        ("bilateral window 5, 8 x 3x32x32", "bilateral", "FORWARD", lambda: (ops.bilateral(images, 5, 0.1, 2.0),), 1e-5),
        ("tv_denoise weight 0.05, 8 x 3x32x32", "tv_denoise", "FORWARD", lambda: (ops.tv_denoise(images, 0.05, 50),),
         1e-4),
        ("batch_norm double backward, 8 x 4x5x5", "batch_norm", "DOUBLE_BACKWARD",
         lambda: batch_norm.batch_norm_double_backward(ggx, ggw, ggb, gy, x, weight, mean, invstd), 1e-4),
    ]  # fmt: skip


def _check_backends(device: torch.device) -> list[str]:
    """Runs every op on every backend that can run on ``device`` and compares it with the
    reference; returns one report line per (op, backend)."""
    lines = []
    for label, module, table, run, tolerance in _cases(device):
        with dispatch.use_backend("reference"):
            expected = run()
        for name in getattr(importlib.import_module(f"orthocore.ops.{module}"), table).compiled_for(device):
            with dispatch.use_backend(name):
                start = time.perf_counter()
                outputs = run()
                elapsed = time.perf_counter() - start
            error = max((got - want).abs().max().item() for got, want in zip(outputs, expected))
            verdict = "ok" if error <= tolerance else "MISMATCH"
            lines.append(f"  {label:<40} {name:<7} {device.type:<5} max|err| {error:.1e}  "
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
