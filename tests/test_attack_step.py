"""attack_step: every backend against the plain-PyTorch reference, and the invariants
of an attack step (ε-ball, [0, 1], no NaN for zero gradients)."""


import pytest
import torch


import orthocore
from orthocore import dispatch
from orthocore.ops import attack_step, attack_step_reference
from tests._shapes import ROW_SHAPES

BACKENDS = dispatch.registered()["attack_step"]

SHAPES = [
    *ROW_SHAPES,
    (3, 40_009),  # few long rows of prime length: CUDA splits them into uneven segments
]
TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-6}
# The momentum is O(1) after division by mean|g|, whose float32 sum order differs per backend.
MOMENTUM_TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-5}
VARIANTS = [("inf", False), ("inf", True), ("2", False), ("2", True)]


def _inputs(shape, dtype, device, momentum):
    clean = torch.rand(shape, dtype=dtype, device=device)
    adv = (clean + 0.02 * torch.randn_like(clean)).clamp(0, 1)
    grad = torch.randn_like(clean)
    rows = shape[0]
    step = torch.rand(rows, dtype=dtype, device=device) * 0.05
    eps = torch.rand(rows, dtype=dtype, device=device) * 0.05
    m = torch.randn_like(clean) if momentum else None
    return adv, grad, clean, step, eps, m


def _run(backend, adv, grad, clean, step, eps, norm, m, decay=0.9):
    with orthocore.use_backend(backend):
        return attack_step(adv, grad, clean, step, eps, norm=norm, momentum=m, decay=decay)


def _backends(device):
    return BACKENDS.compiled_for(device)


def _assert_matches(got, want, tol, what):
    torch.testing.assert_close(got[0], want[0], atol=tol, rtol=0, msg=f"{what}: images")
    if want[1] is None:
        assert got[1] is None, what
    else:
        m_tol = MOMENTUM_TOLERANCE[want[1].dtype]
        torch.testing.assert_close(got[1], want[1], atol=m_tol, rtol=m_tol, msg=f"{what}: momentum")


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize(("norm", "momentum"), VARIANTS, ids=["linf", "linf-momentum", "l2", "l2-momentum"])
def test_matches_reference(device, shape, dtype, norm, momentum):
    backends = _backends(device)
    if not backends:
        pytest.skip(f"no compiled backend for {device}")
    adv, grad, clean, step, eps, m = _inputs(shape, dtype, device, momentum)
    want = _run("reference", adv, grad, clean, step, eps, norm, m)
    for backend in backends:
        if backend == "triton" and device.type == "cpu" and adv.numel() > 200_000:
            continue  # the interpreter is slow; ImageNet rows are covered by the C++ kernel here
        _assert_matches(_run(backend, adv, grad, clean, step, eps, norm, m), want, TOLERANCE[dtype], backend)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_precision_against_float32_oracle(device, dtype):
    """Half inputs: the step is computed in float32 and rounded once, so it is within
    one unit in the last place of the float32 oracle (the largest ulp in [0, 1) is
    finfo.eps / 2; Triton's interpreter truncates instead of rounding)."""
    adv, grad, clean, step, eps, _ = _inputs((16, 3, 8, 8), torch.float32, device, False)
    adv, grad, clean = adv.to(dtype), grad.to(dtype), clean.to(dtype)
    oracle, _ = attack_step_reference(adv.float(), grad.float(), clean.float(), step, eps)
    for backend in ["reference"] + _backends(device):
        out, _ = _run(backend, adv, grad, clean, step, eps, "inf", None)
        assert out.dtype == dtype
        assert (out.float() - oracle).abs().max() <= torch.finfo(dtype).eps / 2, backend


@pytest.mark.parametrize(("norm", "momentum"), VARIANTS, ids=["linf", "linf-momentum", "l2", "l2-momentum"])
def test_stays_in_ball_and_range(device, norm, momentum):
    adv, grad, clean, step, eps, m = _inputs((32, 3, 8, 8), torch.float64, device, momentum)
    step = step * 20  # steps that would leave the ball
    for backend in ["reference"] + _backends(device):
        out, _ = _run(backend, adv, grad, clean, step, eps, norm, m)
        delta = (out - clean).flatten(1)
        size = delta.abs().amax(1) if norm == "inf" else torch.linalg.vector_norm(delta, dim=1)
        assert (size <= eps * (1 + 1e-12)).all(), backend
        assert out.min() >= 0 and out.max() <= 1, backend


def test_zero_gradients_give_no_nan(device):
    """A zero gradient (and a zero momentum sum, and a zero perturbation) leaves the row
    where it is instead of dividing by zero."""
    adv, grad, clean, step, eps, _ = _inputs((4, 3, 5, 5), torch.float32, device, False)
    adv[:2] = clean[:2]  # rows 0, 1: no perturbation yet and no gradient
    grad[:3] = 0  # row 2: perturbed, no gradient
    m = torch.zeros_like(adv)
    for norm in ("inf", "2"):
        for momentum in (None, m):
            for backend in ["reference"] + _backends(device):
                out, new_m = _run(backend, adv, grad, clean, step, eps, norm, momentum)
                assert torch.isfinite(out).all(), (backend, norm)
                assert (out[:2] == clean[:2]).all(), (backend, norm)
                if momentum is not None:
                    assert torch.isfinite(new_m).all() and (new_m[:3] == 0).all(), (backend, norm)


def test_momentum_update_matches_dong_et_al(device):
    """m ← g / mean|g| + μ·m, and the step follows sign(m) rather than sign(g)."""
    adv, grad, clean, step, eps, m = _inputs((3, 2, 4, 4), torch.float64, device, True)
    for backend in ["reference"] + _backends(device):
        out, new_m = _run(backend, adv, grad, clean, step, eps, "inf", m, decay=0.7)
        expected_m = grad / grad.abs().mean((1, 2, 3), keepdim=True) + 0.7 * m
        torch.testing.assert_close(new_m, expected_m)
        b = step[:, None, None, None]
        e = eps[:, None, None, None]
        expected = (clean + (adv + b * expected_m.sign() - clean).clamp(-e, e)).clamp(0, 1)
        torch.testing.assert_close(out, expected)


def test_empty_batch_and_rows(device):
    for shape in [(0, 10), (0, 3, 4, 4), (3, 0)]:
        adv, grad, clean, step, eps, m = _inputs(shape, torch.float32, device, True)
        for backend in ["reference"] + _backends(device):
            out, new_m = _run(backend, adv, grad, clean, step, eps, "2", m)
            assert out.shape == shape and new_m.shape == shape


def test_non_contiguous_inputs(device):
    clean = torch.rand(20, 3, 9, 8, device=device).transpose(2, 3)[::2]  # (10, 3, 8, 9), strided
    adv = (clean + 0.01).clamp(0, 1)
    grad = torch.randn(20, 3, 9, 8, device=device).transpose(2, 3)[::2]
    step = torch.full((20,), 0.03, device=device)[::2]
    eps = torch.full((10,), 0.02, device=device)
    assert not clean.is_contiguous() and not grad.is_contiguous() and not step.is_contiguous()
    want = _run("reference", adv, grad, clean, step, eps, "2", grad.contiguous())
    for backend in _backends(device):
        _assert_matches(_run(backend, adv, grad, clean, step, eps, "2", grad.contiguous()), want, 1e-6, backend)


def test_torch_compile_fullgraph(device):
    adv, grad, clean, step, eps, m = _inputs((4, 3, 4, 4), torch.float32, device, True)

    def fn(a, g, c):
        return attack_step(a, g * 2, c, step, eps, momentum=m)[0].sum()

    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(adv, grad, clean), fn(adv, grad, clean))


def test_opcheck(device):
    for shape, momentum in [((3, 7), False), ((2, 3, 5, 5), True), ((0, 4), True)]:
        adv, grad, clean, step, eps, m = _inputs(shape, torch.float32, device, momentum)
        for l2 in (False, True):
            args = (adv, grad, clean, m, step, eps, l2, 0.5)
            tests = ("test_schema", "test_faketensor")  # not differentiable: no autograd registration to check
            torch.library.opcheck(torch.ops.orthocore.attack_step.default, args, test_utils=tests)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"grad": torch.ones(2, 4)}, ValueError, "same shape"),
        ({"clean": torch.ones(2, 3, dtype=torch.float64)}, TypeError, "same dtype"),
        ({"adv": torch.ones(2, 3, dtype=torch.int64)}, TypeError, "adv must be a floating-point"),
        ({"step": torch.ones(3)}, ValueError, r"step must have shape \(2,\)"),
        ({"eps": torch.ones(2, 1)}, ValueError, r"eps must have shape \(2,\)"),
        ({"momentum": torch.ones(3, 3)}, ValueError, "same shape"),
        ({"norm": "l1"}, ValueError, "norm must be one of"),
        ({"decay": float("nan")}, ValueError, "decay must be a finite number"),
        ({"decay": -0.5}, ValueError, "decay must be a finite number >= 0"),
        ({"eps": torch.tensor([0.1, -0.1])}, ValueError, "eps must be >= 0, got -0.1"),
        ({"eps": torch.tensor([0.1, float("nan")])}, ValueError, "eps must be finite, got NaN"),
        ({"step": torch.tensor([float("inf"), 0.1])}, ValueError, "step must be finite, got inf"),
        ({"grad": torch.tensor([[1.0, float("nan"), 0.0]] * 2)}, ValueError, "grad must be finite, got NaN"),
        ({"momentum": torch.full((2, 3), float("nan"))}, ValueError, "momentum must be finite"),
    ],
)
def test_invalid_inputs_raise(kwargs, error, match):
    args = {"adv": torch.ones(2, 3), "grad": torch.ones(2, 3), "clean": torch.ones(2, 3)}
    args.update({k: kwargs.pop(k) for k in list(kwargs) if k in args})
    options = {"step": torch.ones(2), "eps": torch.ones(2), **kwargs}
    with pytest.raises(error, match=match):
        attack_step(args["adv"], args["grad"], args["clean"], options.pop("step"), options.pop("eps"), **options)
