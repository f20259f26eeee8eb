"""batch_norm_train and its fused double backward: the reference against PyTorch's own
second derivative, every backend against the reference, gradgradcheck in float64, and
the zoo's BatchNorm2d against nn.BatchNorm2d."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import orthocore
from orthocore import dispatch
from orthocore.ops import batch_norm
from orthocore.models.batchnorm import BatchNorm2d
from orthocore.ops.batch_norm import batch_norm_double_backward, batch_norm_double_backward_reference, batch_norm_train
from tests._zoo import assert_trainer_gradients_equal, resnet20_pair

BACKENDS = dispatch.registered()["batch_norm_double_backward"]
EPS = 1e-5
SHAPES = [(3, 5, 7, 9), (2, 3, 1, 1), (4, 2, 6), (5, 4)]  # odd planes, one pixel, 1-D and 0-D planes


def _case(shape, dtype=torch.float64, device="cpu", upstream_params=True):
    generator = torch.Generator().manual_seed(sum(shape))

    def randn(*size):
        return torch.randn(*size, generator=generator, dtype=torch.float64).to(device=device, dtype=dtype)

    x = randn(*shape) * 2 + 0.5
    channels = shape[1]
    weight, bias = randn(channels) + 1.5, randn(channels)
    _, mean, invstd = torch.native_batch_norm(x, weight, bias, None, None, True, 0.0, EPS)
    gy, ggx = randn(*shape), randn(*shape)
    ggw, ggb = (randn(channels), randn(channels)) if upstream_params else (None, None)
    return ggx, ggw, ggb, gy, x, weight, mean, invstd


def _native_double_backward(ggx, ggw, ggb, gy, x, weight):
    """Gradients of <ggx, gx> + <ggw, gw> + <ggb, gb> with respect to (gy, x, weight),
    where (gx, gw, gb) is PyTorch's first backward of F.batch_norm in train mode."""
    gy, x, weight = (t.detach().clone().requires_grad_() for t in (gy, x, weight))
    bias = torch.zeros_like(weight, requires_grad=True)
    y = F.batch_norm(x, None, None, weight, bias, training=True, eps=EPS)
    gx, gw, gb = torch.autograd.grad(y, (x, weight, bias), gy, create_graph=True)
    total = (gx * ggx).sum()
    if ggw is not None:
        total = total + (gw * ggw).sum() + (gb * ggb).sum()
    return torch.autograd.grad(total, (gy, x, weight))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("upstream_params", [True, False], ids=["ggx-ggw-ggb", "ggx-only"])
def test_reference_matches_pytorch_double_backward(shape, upstream_params):
    ggx, ggw, ggb, gy, x, weight, mean, invstd = _case(shape, upstream_params=upstream_params)
    got = batch_norm_double_backward_reference(ggx, ggw, ggb, gy, x, weight, mean, invstd)
    want = _native_double_backward(ggx, ggw, ggb, gy, x, weight)
    for g, w, name in zip(got, want, ("ggy", "gx", "gw")):
        torch.testing.assert_close(g, w, atol=1e-10, rtol=1e-9, msg=name)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("shape", SHAPES + [(0, 3, 4, 4)], ids=str)
def test_backends_match_reference(device, shape, dtype):
    backends = BACKENDS.compiled_for(device)
    if not backends:
        pytest.skip(f"no compiled backend for {device}")
    case = _case(shape, dtype, device) if shape[0] else None
    if case is None:  # zero rows: statistics of nothing, outputs of nothing
        x = torch.empty(shape, dtype=dtype, device=device)
        ones = torch.ones(shape[1], dtype=dtype, device=device)
        case = (x, None, None, x, x, ones, ones, ones)
    want = batch_norm_double_backward_reference(*case)
    tolerance = {torch.float64: 1e-10, torch.float32: 1e-4, torch.bfloat16: 5e-2}[dtype]
    for backend in backends:
        with orthocore.use_backend(backend):
            got = batch_norm_double_backward(*case)
        for g, w, name in zip(got, want, ("ggy", "gx", "gw")):
            assert g.dtype == w.dtype and g.shape == w.shape, name
            scale = max(1.0, w.abs().max().item()) if w.numel() else 1.0
            torch.testing.assert_close(g, w, atol=tolerance * scale, rtol=tolerance, msg=f"{backend} {name}")


@pytest.mark.parametrize("backend", ["reference", "cpu", "triton"])
def test_gradgradcheck(backend):
    if not orthocore.backends()[backend].available:
        pytest.skip(f"{backend} unavailable")
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 3, 2, generator=generator, dtype=torch.float64, requires_grad=True)
    weight = (torch.rand(2, generator=generator, dtype=torch.float64) + 0.5).requires_grad_()
    bias = torch.randn(2, generator=generator, dtype=torch.float64, requires_grad=True)

    def fn(x, weight, bias):
        return batch_norm_train(x, weight, bias, EPS)[0]

    with orthocore.use_backend(backend):
        assert torch.autograd.gradcheck(fn, (x, weight, bias))
        assert torch.autograd.gradgradcheck(fn, (x, weight, bias))


def test_batch_norm_train_equals_pytorch_forward_and_backward():
    ggx, ggw, ggb, gy, x, weight, mean, invstd = _case((4, 3, 5, 5), torch.float32)
    x, weight = x.requires_grad_(), weight.requires_grad_()
    bias = torch.randn(3, requires_grad=True)
    y, got_mean, got_invstd = batch_norm_train(x, weight, bias, EPS)
    want = F.batch_norm(x, None, None, weight, bias, training=True, eps=EPS)
    assert torch.equal(y, want)
    assert torch.equal(got_mean, mean) and torch.equal(got_invstd, invstd)
    assert not got_mean.requires_grad and not got_invstd.requires_grad
    got_grads = torch.autograd.grad(y, (x, weight, bias), gy)
    want_grads = torch.autograd.grad(want, (x, weight, bias), gy)
    for g, w in zip(got_grads, want_grads):
        assert torch.equal(g, w)


def test_bad_input_is_a_clear_error():
    ggx, ggw, ggb, gy, x, weight, mean, invstd = _case((2, 3, 4, 4))
    with pytest.raises(ValueError, match="gy and x must have the same shape"):
        batch_norm_double_backward(ggx, ggw, ggb, gy[:1], x, weight, mean, invstd)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        batch_norm_double_backward(ggx, ggw, ggb, gy, x, weight[:2], mean, invstd)
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        batch_norm_double_backward(ggx, ggw, ggb, gy, x.long(), weight, mean, invstd)


# --------------------------------------------------------------------- the module
def _pair(channels=4, momentum=0.1):
    torch.manual_seed(3)
    native = nn.BatchNorm2d(channels, momentum=momentum)
    with torch.no_grad():
        native.weight.uniform_(0.5, 1.5)
        native.bias.uniform_(-0.5, 0.5)
    fused = BatchNorm2d(channels, momentum=momentum)
    fused.load_state_dict(native.state_dict())
    return native, fused


@pytest.mark.parametrize("momentum", [0.1, None])
def test_module_equals_nn_batchnorm(momentum):
    native, fused = _pair(momentum=momentum)
    for _ in range(3):
        x = torch.randn(6, 4, 5, 7) * 3 + 1
        assert torch.equal(fused(x), native(x))
    torch.testing.assert_close(fused.running_mean, native.running_mean, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(fused.running_var, native.running_var, atol=1e-6, rtol=1e-5)
    assert fused.num_batches_tracked.item() == native.num_batches_tracked.item() == 3
    native.eval(), fused.eval()
    x = torch.randn(2, 4, 3, 3)
    torch.testing.assert_close(fused(x), native(x))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        fused.train()(torch.randn(1, 4, 1, 1))


@pytest.mark.parametrize("forced", ["reference", "cuda"])
def test_module_without_a_kernel_for_the_forced_backend_is_pytorch_batchnorm(forced, monkeypatch):
    """Forcing a backend that has no double-backward kernel (the reference, or CUDA for
    the other ops) makes the module plain nn.BatchNorm2d, not an error."""
    native, fused = _pair()
    calls = []
    monkeypatch.setattr(batch_norm, "batch_norm_train", lambda *args: calls.append(args))
    x = torch.randn(4, 4, 3, 3)
    monkeypatch.setenv("ORTHOCORE_BACKEND", forced)  # (use_backend would refuse an unavailable CUDA)
    assert torch.equal(fused(x), native(x))
    assert calls == []
    monkeypatch.delenv("ORTHOCORE_BACKEND")
    assert batch_norm.fused_available(torch.device("cpu")) == orthocore.backends()["cpu"].available


@pytest.mark.parametrize("backend", ["cpu", "triton"])
def test_orthogonal_loss_gradients_equal_the_native_batchnorm_ones(one_thread, backend):
    """The trainer's parameter gradient (torch.func input gradient, double backprop)
    through the zoo's ResNet-20 with the fused module (on each backend that has the
    kernel) and with nn.BatchNorm2d."""
    if not orthocore.backends()[backend].available:
        pytest.skip(orthocore.backends()[backend].reason)
    fused, native = resnet20_pair(BatchNorm2d, lambda module: nn.BatchNorm2d(module.num_features))
    with orthocore.use_backend(backend):
        assert batch_norm.fused_available(torch.device("cpu"))
        # Triton's interpreter runs every program in Python: smaller images there
        assert_trainer_gradients_equal(fused, native, side=32 if backend == "cpu" else 8)


def test_opcheck_and_compile():
    case = _case((3, 4, 5, 6), torch.float32)
    torch.library.opcheck(torch.ops.orthocore.batch_norm_double_backward.default, case)
    compiled = torch.compile(batch_norm_double_backward, fullgraph=True, backend="aot_eager")
    for got, want in zip(compiled(*case), batch_norm_double_backward(*case)):
        torch.testing.assert_close(got, want)


def test_train_ops_opcheck_and_compile():
    """The forward and first-backward ops: opcheck (schema, fake, autograd registration),
    and batch_norm_train's forward and backward under torch.compile(fullgraph=True)
    (inductor does not compile double backward: pytorch/pytorch#181581)."""
    _, _, _, gy, x, weight, mean, invstd = _case((3, 4, 5, 6), torch.float64)
    x, weight = x.requires_grad_(), weight.requires_grad_()
    bias = torch.randn(4, dtype=torch.float64, requires_grad=True)
    torch.library.opcheck(torch.ops.orthocore.batch_norm_train.default, (x, weight, bias, EPS))
    torch.library.opcheck(torch.ops.orthocore.batch_norm_train_backward.default, (gy, x, weight, mean, invstd, EPS))

    def normalised(x, weight, bias):
        return batch_norm_train(x, weight, bias, EPS)[0]

    compiled = torch.compile(normalised, fullgraph=True, backend="aot_eager")
    got, want = compiled(x, weight, bias), normalised(x, weight, bias)
    torch.testing.assert_close(got, want)
    for g, w in zip(torch.autograd.grad(got, (x, weight, bias), gy), torch.autograd.grad(want, (x, weight, bias), gy)):
        torch.testing.assert_close(g, w)


def test_direct_op_callers_get_the_same_autograd():
    x = torch.randn(3, 2, 3, 2, dtype=torch.float64, requires_grad=True)
    weight = (torch.rand(2, dtype=torch.float64) + 0.5).requires_grad_()
    bias = torch.randn(2, dtype=torch.float64, requires_grad=True)

    def direct(x, weight, bias):
        return torch.ops.orthocore.batch_norm_train(x, weight, bias, EPS)[0]

    assert torch.autograd.gradgradcheck(direct, (x, weight, bias))
