"""normalized_dot: every backend against the plain-PyTorch reference."""

import pytest
import torch
import torch.nn.functional as F

import orthocore
from orthocore import dispatch
from orthocore.ops import normalized_dot, normalized_dot_reference
from tests._shapes import ROW_SHAPES

BACKENDS = dispatch.registered()["normalized_dot"]

SHAPES = ROW_SHAPES
TOLERANCE = {torch.float64: 1e-12, torch.float32: 2e-6}


def _pair(shape, dtype, device, requires_grad=True):
    a = torch.randn(shape, dtype=dtype, device=device)
    b = torch.randn(shape, dtype=dtype, device=device) + 0.5 * a  # correlated: δ away from 0
    return a.requires_grad_(requires_grad), b.requires_grad_(requires_grad)


def _run(backend, a, b, grad_out):
    with orthocore.use_backend(backend):
        delta = normalized_dot(a, b)
        grads = torch.autograd.grad(delta, (a, b), grad_out)
    return delta, grads


def _backends(device):
    return BACKENDS.compiled_for(device)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_matches_reference(device, shape, dtype):
    backends = _backends(device)
    if not backends:
        pytest.skip(f"no compiled backend for {device}")
    a, b = _pair(shape, dtype, device)
    grad_out = torch.randn(shape[0], dtype=dtype, device=device)
    expected, expected_grads = _run("reference", a, b, grad_out)
    for backend in backends:
        if backend == "triton" and device.type == "cpu" and a.numel() > 200_000:
            continue  # the interpreter is slow; the (2, 150528) row covers splits on GPUs
        delta, grads = _run(backend, a, b, grad_out)
        tol = TOLERANCE[dtype]
        torch.testing.assert_close(delta, expected, atol=tol, rtol=tol, msg=f"{backend} forward")
        for got, want, name in zip(grads, expected_grads, "ab"):
            torch.testing.assert_close(got, want, atol=tol, rtol=1e-4, msg=f"{backend} grad of {name}")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_precision_error_within_twice_torch(device, dtype):
    """Half inputs are judged against a float64 oracle relative to plain torch's own
    error in the same precision (cosine_similarity), not against a hand-picked atol."""
    a64, b64 = _pair((64, 3 * 32 * 32), torch.float64, device, requires_grad=False)
    a, b = a64.to(dtype), b64.to(dtype)
    oracle = normalized_dot_reference(a.double(), b.double())
    torch_error = (F.cosine_similarity(a, b, dim=1).double() - oracle).abs().max()
    for backend in ["reference"] + _backends(device):
        with orthocore.use_backend(backend):
            delta = normalized_dot(a, b)
        assert delta.dtype == dtype
        error = (delta.double() - oracle).abs().max()
        assert error <= 2 * torch_error + 1e-3, f"{backend}: {error} vs torch {torch_error}"


@pytest.mark.parametrize("backend", ["reference", "cpu", "triton", "cuda"])
def test_gradcheck_float64(device, backend):
    if backend != "reference" and backend not in _backends(device):
        pytest.skip(f"{backend} unavailable on {device}")
    a, b = _pair((4, 3, 5), torch.float64, device)
    with orthocore.use_backend(backend):
        assert torch.autograd.gradcheck(normalized_dot, (a, b))


def test_gradgradcheck_float64(device):
    """Double backward runs through the differentiable reference formula."""
    a, b = _pair((3, 6), torch.float64, device)
    assert torch.autograd.gradgradcheck(normalized_dot, (a, b))


def test_zero_rows_give_zero_delta_and_gradient(device):
    a, b = _pair((6, 50), torch.float32, device, requires_grad=False)
    a[1] = 0
    b[2] = 0
    a[3] = 0
    b[3] = 0
    for backend in ["reference"] + _backends(device):
        a_, b_ = a.clone().requires_grad_(), b.clone().requires_grad_()
        delta, (grad_a, grad_b) = _run(backend, a_, b_, torch.ones(6, device=device))
        assert torch.isfinite(delta).all() and torch.isfinite(grad_a).all() and torch.isfinite(grad_b).all()
        assert (delta[1:4] == 0).all(), backend
        assert (grad_a[1:4] == 0).all() and (grad_b[1:4] == 0).all(), backend
        assert (delta[[0, 4, 5]] != 0).all(), backend


def test_every_backend_gives_the_references_values_on_nan_inf_denormal_and_huge_rows(device):
    """One semantics on every input: a NaN anywhere in a row gives NaN δ and NaN gradients
    for that row (never a silent 0); other rows are untouched."""
    a, b = _pair((7, 40), torch.float32, device, requires_grad=False)
    a[0, 3] = float("nan")
    b[1, 0] = float("nan")
    a[2, 5] = float("inf")
    a[3] = 1e-40  # denormal float32 throughout
    a[4] = 1e30
    b[4] = -1e30
    expected, (ref_a, ref_b) = _run("reference", a.clone().requires_grad_(), b.clone().requires_grad_(),
                                    torch.ones(7, device=device))  # fmt: skip
    assert expected[:3].isnan().all() and torch.isfinite(expected[5:]).all()
    for backend in _backends(device):
        delta, (grad_a, grad_b) = _run(backend, a.clone().requires_grad_(), b.clone().requires_grad_(),
                                       torch.ones(7, device=device))  # fmt: skip
        torch.testing.assert_close(delta, expected, equal_nan=True, rtol=2e-5, atol=1e-6, msg=backend)
        assert torch.equal(grad_a.isnan().any(1), ref_a.isnan().any(1)), backend
        assert torch.equal(grad_b.isnan().any(1), ref_b.isnan().any(1)), backend
        torch.testing.assert_close(grad_a[5:], ref_a[5:], rtol=2e-5, atol=1e-6, msg=backend)


def test_empty_batch_and_empty_rows(device):
    for shape in [(0, 10), (0, 3, 4, 4), (4, 0)]:
        for backend in ["reference"] + _backends(device):
            a, b = _pair(shape, torch.float32, device)
            delta, (grad_a, grad_b) = _run(backend, a, b, torch.ones(shape[0], device=device))
            assert delta.shape == (shape[0],) and grad_a.shape == shape and grad_b.shape == shape
            assert (delta == 0).all()


def test_non_contiguous_inputs(device):
    base_a = torch.randn(40, 3, 9, 8, device=device)
    base_b = torch.randn(40, 3, 9, 8, device=device)
    a = base_a.transpose(2, 3)[::2].requires_grad_()  # (20, 3, 8, 9), strided
    b = base_b.transpose(2, 3)[::2].requires_grad_()
    assert not a.is_contiguous()
    grad_out = torch.randn(20, device=device)
    expected, expected_grads = _run("reference", a, b, grad_out)
    for backend in _backends(device):
        delta, grads = _run(backend, a, b, grad_out)
        torch.testing.assert_close(delta, expected)
        for got, want in zip(grads, expected_grads):
            assert got.shape == want.shape
            torch.testing.assert_close(got, want)


def test_constant_reference_gets_no_gradient(device):
    """The reference-model gradient is usually a constant: only d/da is computed."""
    a, _ = _pair((8, 30), torch.float32, device)
    b = torch.randn(8, 30, device=device)
    for backend in ["reference"] + _backends(device):
        with orthocore.use_backend(backend):
            delta = normalized_dot(a, b)
            (grad_a,) = torch.autograd.grad(delta.sum(), a)
        (want,) = torch.autograd.grad(F.cosine_similarity(a, b, dim=1).sum(), a)
        torch.testing.assert_close(grad_a, want)
        assert b.grad is None


def test_cosine_similarity_agreement(device):
    a, b = _pair((16, 3, 8, 8), torch.float32, device, requires_grad=False)
    torch.testing.assert_close(normalized_dot(a, b), F.cosine_similarity(a.flatten(1), b.flatten(1), dim=1))


def test_torch_func_grad_composes(device):
    """The trainer differentiates through the op inside torch.func transforms."""
    a, b = _pair((5, 12), torch.float64, device, requires_grad=False)

    def loss(x):
        return normalized_dot(x, b).abs().sum()

    got = torch.func.grad(loss)(a)
    want = torch.func.grad(lambda x: normalized_dot_reference(x, b).abs().sum())(a)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("compiler", ["aot_eager", "inductor"])
def test_torch_compile_fullgraph(device, compiler):
    a, b = _pair((8, 3, 4, 4), torch.float32, device)

    def fn(x, y):
        return (normalized_dot(x * 2, y) ** 2).mean()

    compiled = torch.compile(fn, fullgraph=True, backend=compiler)
    got = compiled(a, b)
    grads = torch.autograd.grad(got, (a, b))
    want = fn(a, b)
    want_grads = torch.autograd.grad(want, (a, b))
    torch.testing.assert_close(got, want)
    for g, w in zip(grads, want_grads):
        torch.testing.assert_close(g, w)


def test_opcheck(device):
    for shape in [(3, 7), (2, 3, 5, 5), (0, 4)]:
        a, b = _pair(shape, torch.float32, device)
        torch.library.opcheck(torch.ops.orthocore.normalized_dot.default, (a, b))
        _, stats = torch.ops.orthocore.normalized_dot(a.detach(), b.detach())
        grad_delta = torch.randn(shape[0], device=device, requires_grad=True)
        for need_a, need_b in [(True, True), (True, False), (False, True)]:
            args = (grad_delta, a, b, stats, need_a, need_b)
            torch.library.opcheck(torch.ops.orthocore.normalized_dot_backward.default, args)


def test_direct_op_callers_get_the_same_autograd():
    """torch.ops.orthocore.normalized_dot (the registered autograd) and normalized_dot (the
    Function torch.func accepts) share one derivative, double backward included."""
    a, b = _pair((4, 6), torch.float64, "cpu")

    def direct(x, y):
        return torch.ops.orthocore.normalized_dot(x, y)[0]

    assert torch.autograd.gradcheck(direct, (a, b))
    assert torch.autograd.gradgradcheck(direct, (a, b))
    grad_out = torch.randn(4, dtype=torch.float64)
    for got, want in zip(torch.autograd.grad(direct(a, b), (a, b), grad_out),
                         torch.autograd.grad(normalized_dot(a, b), (a, b), grad_out)):  # fmt: skip
        torch.testing.assert_close(got, want, atol=0, rtol=0)


@pytest.mark.parametrize(
    ("a", "b", "error", "match"),
    [
        (torch.ones(2, 3), torch.ones(2, 4), ValueError, "same shape"),
        (torch.ones(2, 3), torch.ones(2, 3, dtype=torch.float64), TypeError, "same dtype"),
        (torch.ones(2, 3, dtype=torch.int64), torch.ones(2, 3, dtype=torch.int64), TypeError, "floating-point"),
        (torch.ones(2, 3), torch.ones(2, 3, device="meta"), ValueError, "same device"),
        (torch.tensor(1.0), torch.tensor(1.0), ValueError, r"a must have shape \(B, \*\)"),
        (torch.ones(2, 3), [[1.0] * 3] * 2, TypeError, "b must be a torch.Tensor"),
    ],
)
def test_invalid_inputs_raise(a, b, error, match):
    with pytest.raises(error, match=match):
        normalized_dot(a, b)


def test_compiled_without_gradient(device):
    """torch.compile of a call whose inputs need no gradient (an evaluation) traces the op."""
    a, b = _pair((4, 9), torch.float32, device, requires_grad=False)
    compiled = torch.compile(lambda x, y: normalized_dot(x, y) + 1, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(a, b), normalized_dot(a, b) + 1)


def test_second_order_under_torch_func(device):
    """Hessian-vector products through the op (fused forward and backward, reference
    double backward) equal those of the reference, under nested torch.func.grad."""
    a, b = _pair((4, 9), torch.float64, device, requires_grad=False)
    v = torch.randn_like(a)

    def hvp(fn):
        return torch.func.grad(lambda x: (torch.func.grad(lambda y: fn(y, b).sum())(x) * v).sum())(a)

    torch.testing.assert_close(hvp(normalized_dot), hvp(normalized_dot_reference))


def test_eager_calls_reach_the_kernels_without_the_custom_ops_dispatch(device):
    """On plain tensors the fused path calls its kernels directly (no custom-op dispatch,
    whose Python cost matched the kernel's on small batches); torch.compile traces the op."""
    backend = {"cpu": "cpu", "cuda": "cuda"}[device.type]
    if backend not in _backends(device):
        pytest.skip(f"{backend} unavailable on {device}")
    a, b = _pair((8, 3, 4, 4), torch.float32, device)

    def called(fn) -> set[str]:
        with orthocore.use_backend(backend), torch.profiler.profile() as profile:
            fn()
        return {event.name for event in profile.events() if event.name.startswith("orthocore::")}

    eager = called(lambda: torch.autograd.grad(normalized_dot(a, b).sum(), a))
    assert eager == {"orthocore::normalized_dot_fwd", "orthocore::normalized_dot_bwd"}
    compiled = torch.compile(lambda x, y: normalized_dot(x, y).sum(), fullgraph=True, backend="aot_eager")
    traced = called(lambda: torch.autograd.grad(compiled(a, b), a))
    assert {"orthocore::normalized_dot", "orthocore::normalized_dot_backward"} <= traced
