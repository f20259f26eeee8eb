"""conv2d_train and orthocore.models.Conv2d: the forward and first derivatives equal
PyTorch's, the second derivative (the weight term from the weight-gradient kernel)
equals PyTorch's double backward, gradcheck/gradgradcheck in float64, torch.func
double backprop as the trainer takes it, opcheck, torch.compile, bad input."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from orthocore.models import Conv2d
from orthocore.ops.conv2d import conv2d_double_backward, conv2d_train
from tests._zoo import assert_trainer_gradients_equal, resnet20_pair

# (batch, in, out, side, kernel, stride, padding, dilation, groups, bias, channels_last)
CASES = [
    (3, 2, 4, 7, 3, 1, 1, 1, 1, True, False),
    (2, 4, 6, 9, 3, 2, 1, 1, 2, False, False),  # strided, grouped: a size stride does not divide
    (2, 3, 5, 8, 1, 1, 0, 1, 1, True, True),  # 1x1, channels_last
    (1, 2, 3, 10, 3, 1, 2, 2, 1, True, True),  # dilated
    (4, 1, 3, 5, 3, 1, 0, 1, 1, False, False),  # one input channel, no padding
    (0, 2, 3, 6, 3, 1, 1, 1, 1, True, False),  # no rows
]


def _case(case, dtype=torch.float64):
    batch, cin, cout, side, kernel, stride, padding, dilation, groups, bias, last = case
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, cin, side, side, dtype=dtype, generator=generator)
    if last:
        x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(cout, cin // groups, kernel, kernel, dtype=dtype, generator=generator)
    b = torch.randn(cout, dtype=dtype, generator=generator) if bias else None
    leaves = [t.requires_grad_() for t in (x, weight, b) if t is not None]
    return x, weight, b, (stride, padding, dilation, groups), leaves


def _second_order(conv, x, weight, bias, arguments, leaves):
    """The first derivatives of a random projection ``gy`` of the output, and the
    derivatives of a random projection of all of them together (the double backward with
    every upstream term at once) with respect to the inputs and to ``gy``."""
    y = conv(x, weight, bias, *arguments)
    generator = torch.Generator().manual_seed(1)
    gy = torch.randn(y.shape, dtype=y.dtype, generator=generator).requires_grad_()
    first = torch.autograd.grad(y, leaves, gy, create_graph=True)
    projections = [torch.randn(g.shape, dtype=g.dtype, generator=generator) for g in first]
    total = sum((g * p).sum() for g, p in zip(first, projections))
    return y, first, torch.autograd.grad(total, [*leaves, gy], allow_unused=True)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_equals_pytorch_to_the_second_derivative(case):
    x, weight, bias, arguments, leaves = _case(case)
    ours = _second_order(conv2d_train, x, weight, bias, arguments, leaves)
    theirs = _second_order(F.conv2d, x, weight, bias, arguments, leaves)
    assert torch.equal(ours[0], theirs[0])  # the same forward kernel
    assert ours[0].stride() == theirs[0].stride()
    for got, want in zip(ours[1], theirs[1]):
        assert torch.equal(got, want)  # the same first-backward kernel
    for got, want in zip(ours[2], theirs[2]):
        if want is None:
            assert got is None or not got.any()
        else:
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", CASES[:5], ids=str)
def test_gradcheck_and_gradgradcheck(case):
    x, weight, bias, arguments, leaves = _case(case)

    def fn(*inputs):
        x, weight, *rest = inputs
        return conv2d_train(x, weight, rest[0] if rest else None, *arguments)

    assert torch.autograd.gradcheck(fn, tuple(leaves))
    assert torch.autograd.gradgradcheck(fn, tuple(leaves))


def test_double_backward_leaves_out_what_is_not_asked():
    """Each result of the double backward only where its upstream term reaches it."""
    x, weight, _, (stride, padding, dilation, groups), _ = _case(CASES[0])
    x, weight = x.detach(), weight.detach()
    gy = torch.randn(3, 4, 7, 7, dtype=torch.float64)
    args = (gy, x, weight, [stride] * 2, [padding] * 2, [dilation] * 2, groups)
    ggy, gx, gw = conv2d_double_backward(torch.ones_like(x), None, None, *args, (True, True, True))
    assert gx is None and ggy is not None and gw is not None  # no ggW: nothing for x
    ggy, gx, gw = conv2d_double_backward(None, torch.ones_like(weight), None, *args, (True, True, False))
    assert gw is None and gx is not None  # no ggx: nothing for W
    assert conv2d_double_backward(None, None, None, *args, (True, True, True)) == (None, None, None)


def _zoo_pair():
    """ResNet-20 with orthocore's Conv2d, and a copy of it with nn.Conv2d."""
    ours, native = resnet20_pair(Conv2d, lambda m: nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride,
                                                              m.padding, m.dilation, m.groups, m.bias is not None))  # fmt: skip
    assert sum(type(m) is Conv2d for m in ours.modules()) == 19
    return ours, native


def test_orthogonal_loss_gradients_equal_the_native_conv_ones(one_thread):
    """The trainer's parameter gradient (torch.func input gradient, double backprop)
    through the zoo's ResNet-20 with orthocore's Conv2d and with nn.Conv2d."""
    assert_trainer_gradients_equal(*_zoo_pair(), side=16)


def test_module_is_nn_conv2d_outside_train_mode_and_loads_its_state():
    ours, native = _zoo_pair()
    x = torch.rand(4, 3, 16, 16)
    assert ours.state_dict().keys() == native.state_dict().keys()
    for model in (ours, native):
        model.eval()
    assert torch.equal(ours(x), native(x))
    module = Conv2d(2, 3, 3, padding="same")  # string padding: PyTorch's convolution
    plain = nn.Conv2d(2, 3, 3, padding="same")
    plain.load_state_dict(module.state_dict())
    z = torch.rand(2, 2, 5, 5)
    assert torch.equal(module(z), plain(z))


def test_opcheck_and_compile():
    """Both ops: opcheck (schema, fake, autograd registration); the forward and first
    derivatives under torch.compile(fullgraph=True)."""
    x, weight, bias, (stride, padding, dilation, groups), leaves = _case(CASES[1])
    pairs = [stride] * 2, [padding] * 2, [dilation] * 2
    torch.library.opcheck(torch.ops.orthocore.conv2d.default, (x, weight, bias, *pairs, groups))
    y = F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    gy = torch.randn_like(y)
    torch.library.opcheck(torch.ops.orthocore.conv2d_backward.default,
                          (gy, x, weight, *pairs, groups, [True, True, False]))  # fmt: skip

    def conv(x, weight):
        return conv2d_train(x, weight, bias, stride, padding, dilation, groups)

    compiled = torch.compile(conv, fullgraph=True, backend="aot_eager")
    got = compiled(x, weight)
    assert torch.equal(got, y)
    for g, w in zip(torch.autograd.grad(got, (x, weight), gy), torch.autograd.grad(y, (x, weight), gy)):
        torch.testing.assert_close(g, w)


def test_direct_op_callers_get_the_same_autograd():
    x, weight, bias, (stride, padding, dilation, groups), leaves = _case(CASES[0])

    def direct(x, weight, bias):
        return torch.ops.orthocore.conv2d(x, weight, bias, [stride] * 2, [padding] * 2, [dilation] * 2, groups)

    assert torch.autograd.gradgradcheck(direct, (x, weight, bias))


def test_bad_input_is_a_clear_error():
    x, weight = torch.rand(2, 3, 5, 5), torch.rand(4, 3, 3, 3)
    with pytest.raises(ValueError, match="x must have shape"):
        conv2d_train(x[0], weight)
    with pytest.raises(ValueError, match="weight must have shape"):
        conv2d_train(x, weight[0])
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        conv2d_train(x.long(), weight)
    with pytest.raises(ValueError, match="stride must be an int or a pair"):
        conv2d_train(x, weight, stride=(1, 1, 1))
    with pytest.raises(ValueError, match="padding"):
        conv2d_train(x, weight, padding=-1)
    with pytest.raises(ValueError, match="groups"):
        conv2d_train(x, weight, groups=0)
