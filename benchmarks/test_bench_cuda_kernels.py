"""Every fused op on a CUDA device: each compiled backend (CUDA C++, Triton) against the
eager PyTorch reference, and kornia's bilateral filter where kornia is installed.

Skipped where no GPU is visible. Each timed call ends with ``torch.cuda.synchronize()``;
each backend's result is checked against the reference before it is timed, so a broken
kernel cannot look fast. Shapes are the CPU benchmarks' (the speed targets are CPU
targets; this file tells what the same ops cost on a GPU).

    .venv/bin/python -m pytest benchmarks/test_bench_cuda_kernels.py --benchmark-group-by=group
"""

from __future__ import annotations


import pytest
import torch

import orthocore
from orthocore import dispatch
from orthocore.ops import attack_step, bilateral, bit_depth, jpeg, normalized_dot, tv_denoise

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

CUDA = torch.device("cuda")
IMAGES = {"256x3x32x32": (256, 3, 32, 32), "16x3x224x224": (16, 3, 224, 224)}
BACKENDS = dispatch.registered()  # every op's backends, by op name


def _images(shape: str) -> torch.Tensor:
    generator = torch.Generator(device=CUDA).manual_seed(0)
    return torch.rand(IMAGES[shape], generator=generator, device=CUDA)


def _normalized_dot_fwd_bwd(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    a = x.flatten(1).requires_grad_()
    b = x.flip(0).flatten(1)
    delta = normalized_dot(a, b)
    (grad,) = torch.autograd.grad(delta.sum(), a)
    return delta, grad


def _attack_step(x: torch.Tensor) -> torch.Tensor:
    rows = x.shape[0]
    grad = x.flip(0) - 0.5
    step = torch.full((rows,), 0.004, device=CUDA)
    eps = torch.full((rows,), 0.03, device=CUDA)
    out, momentum = attack_step(x, grad, x, step, eps, momentum=torch.zeros_like(x))
    return out


# op name -> (its backend table, the call timed, tolerance against the reference)
OPS = {
    "normalized_dot fwd+bwd": (BACKENDS["normalized_dot"], _normalized_dot_fwd_bwd, 1e-5),
    "attack_step (MI-FGSM)": (BACKENDS["attack_step"], _attack_step, 1e-6),
    "jpeg q85": (BACKENDS["jpeg"], lambda x: jpeg(x, 85), 1.5 / 255),
    "tv_denoise w0.05 50 iters": (BACKENDS["tv_denoise"], lambda x: tv_denoise(x, 0.05, 50), 1e-4),
    "bilateral window 9": (BACKENDS["bilateral"], lambda x: bilateral(x, 9, 75 / 255, 75.0), 1e-4),
    "bit_depth 3 bits": (BACKENDS["bit_depth"], lambda x: bit_depth(x, 3), 0.0),
}


def _synchronized(fn, x):
    def run():
        out = fn(x)
        torch.cuda.synchronize()
        return out

    return run


def _cases():
    for op, (op_backends, _, _) in OPS.items():
        for backend in ("reference", "cuda", "triton"):
            if backend == "reference" or backend in op_backends.impls:
                for shape in IMAGES:
                    yield pytest.param(op, backend, shape, id=f"{op}-{backend}-{shape}")


@pytest.mark.parametrize(("op", "backend", "shape"), list(_cases()))
def test_cuda_op(benchmark, op, backend, shape):
    op_backends, fn, tolerance = OPS[op]
    if backend != "reference" and backend not in op_backends.compiled_for(CUDA):
        pytest.skip(f"backend {backend!r} cannot run {op} here")
    benchmark.group = f"{op} {shape} cuda"
    # "orthocore" is the backend chosen automatically on a GPU; the ratio table is relative to it.
    automatic = op_backends.select(CUDA)
    benchmark.extra_info["provider"] = "orthocore" if backend == automatic else f"{backend} backend"
    x = _images(shape)
    with orthocore.use_backend("reference"):
        want = fn(x)
    with orthocore.use_backend(backend):
        got = benchmark.pedantic(_synchronized(fn, x), rounds=20, warmup_rounds=2)
    for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        torch.testing.assert_close(g, w, atol=tolerance, rtol=1e-4)


@pytest.mark.parametrize("shape", IMAGES)
def test_kornia_bilateral(benchmark, shape):
    filters = pytest.importorskip("kornia.filters")
    benchmark.group = f"bilateral window 9 {shape} cuda"
    benchmark.extra_info["provider"] = "kornia"
    x = _images(shape)
    out = benchmark.pedantic(
        _synchronized(lambda t: filters.bilateral_blur(t, (9, 9), 75 / 255, (75.0, 75.0), border_type="reflect"), x),
        rounds=20,
        warmup_rounds=2,
    )
    assert out.shape == x.shape and torch.isfinite(out).all()
