"""normalized_dot forward+backward (gradient for ``a`` only, as the trainer needs):
orthocore's fused CPU kernel vs the eager reference, torch.compile(reference), eager
``cosine_similarity``, and a memory floor that moves the bytes the fused op must move
(forward reads a and b: one einsum; backward reads a and b and writes one gradient:
one ``torch.add(a, b, out=c)``)."""

import pytest
import torch
import torch.nn.functional as F

import orthocore
from orthocore.ops import normalized_dot, normalized_dot_reference

SIZES = {"128x3x32x32": (128, 3 * 32 * 32), "32x3x224x224": (32, 3 * 224 * 224)}


def _inputs(size):
    generator = torch.Generator().manual_seed(0)
    rows, cols = SIZES[size]
    a = torch.randn(rows, cols, generator=generator).requires_grad_()
    b = torch.randn(rows, cols, generator=generator)
    return a, b


def _forward_backward(fn, a, b):
    delta = fn(a, b)
    (grad,) = torch.autograd.grad(delta.sum(), a)
    return delta, grad


def _cosine(a, b):
    return F.cosine_similarity(a, b, dim=1)


def _floor(a, b, out):
    a = a.detach()
    torch.einsum("bd,bd->b", a, b)
    torch.add(a, b, out=out)
    return out


_compiled_reference = torch.compile(normalized_dot_reference)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    "provider", ["orthocore", "reference (eager)", "torch.compile(reference)", "cosine_similarity (eager)"]
)
def test_normalized_dot_forward_backward(benchmark, size, provider):
    benchmark.group = f"normalized_dot fwd+bwd {size}"
    benchmark.extra_info["provider"] = provider
    a, b = _inputs(size)
    fn = {
        "orthocore": normalized_dot,
        "reference (eager)": normalized_dot_reference,
        "torch.compile(reference)": _compiled_reference,
        "cosine_similarity (eager)": _cosine,
    }[provider]
    with orthocore.use_backend("cpu") if provider == "orthocore" else orthocore.use_backend("reference"):
        delta, grad = benchmark(_forward_backward, fn, a, b)
    want_delta, want_grad = _forward_backward(normalized_dot_reference, a, b)
    torch.testing.assert_close(delta, want_delta, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(grad, want_grad, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("size", SIZES)
def test_memory_floor(benchmark, size):
    benchmark.group = f"normalized_dot fwd+bwd {size}"
    benchmark.extra_info["provider"] = "memory floor (einsum + add)"
    a, b = _inputs(size)
    out = torch.empty_like(b)
    result = benchmark(_floor, a, b, out)
    torch.testing.assert_close(result, a.detach() + b)
