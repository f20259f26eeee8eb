"""Property-based fuzzing of every op and every backend against its reference.

Each generated input ends in one of two ways for every backend: the reference's result
(NaN where the reference gives NaN, a number where it gives a number), or exactly the
reference's error, a ``ValueError``/``TypeError`` that names the argument. Inputs span
shapes with 0- and 1-sized and prime dimensions, non-contiguous and channels-last
strides, float32 and float64, and values that include NaN, ±inf, denormals, ±1e30 and
exact zeros.

The number of examples comes from the hypothesis profile (``tests/conftest.py``): ``ci``
by default, ``--hypothesis-profile=thorough`` for a longer local run.
"""

from __future__ import annotations


import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import orthocore
from orthocore import dispatch, ops
from orthocore.ops.batch_norm import batch_norm_double_backward

SPECIAL = [0.0, -0.0, float("nan"), float("inf"), -float("inf"), 1e-40, -1e-40, 1e30, -1e30, 1.0]
EXPECTED_ERRORS = (ValueError, TypeError)


def _backends(op: str) -> list[str]:
    return dispatch.registered()[op].compiled_for(torch.device("cpu"))


def _values(dtype, *, unit: bool = False):
    """Numbers of ``dtype``: mostly ordinary, sometimes special; ``unit`` keeps ordinary
    ones in [0, 1] (images) while the specials still probe the checks."""
    low, high = (0.0, 1.0) if unit else (-10.0, 10.0)
    width = 32 if dtype == np.float32 else 64
    ordinary = st.floats(low, high, width=width)
    return st.one_of(ordinary, ordinary, ordinary, st.sampled_from(SPECIAL))


@st.composite
def _tensor(draw, shape, dtype, *, unit: bool = False, layouts=("contiguous", "transposed", "channels_last")):
    """A tensor of ``shape`` whose strides may be transposed or channels-last."""
    array = draw(hnp.arrays(dtype, shape, elements=_values(dtype, unit=unit)))
    layout = draw(st.sampled_from(layouts))
    x = torch.from_numpy(array.copy())
    if layout == "transposed" and x.dim() >= 2:
        x = x.transpose(-1, -2).contiguous().transpose(-1, -2)  # same values, column-major strides
    elif layout == "channels_last" and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _outcome(run):
    """``("ok", result)`` or ``("error", (type, message))`` for an expected error."""
    try:
        return "ok", run()
    except EXPECTED_ERRORS as error:
        return "error", (type(error), str(error))


def _assert_same(expected, got, backend, rtol, atol):
    kind, value = expected
    assert got[0] == kind, f"{backend}: {got} where the reference gave {expected}"
    if kind == "error":
        assert got[1] == value, backend
        return
    for want, have, slack in zip(_as_tuple(value), _as_tuple(got[1]), _as_tuple(atol) * len(_as_tuple(value))):
        if want is None:
            assert have is None, backend
            continue
        assert have.shape == want.shape and have.dtype == want.dtype, backend
        assert torch.equal(have.isnan(), want.isnan()), f"{backend}: NaN where the reference has a number, or not"
        infinite = want.isinf() | have.isinf()
        assert torch.equal(have[infinite], want[infinite]), f"{backend}: infinities differ"
        finite = ~(infinite | want.isnan())
        bound = torch.as_tensor(slack, dtype=want.dtype).expand_as(want) + rtol * want.abs()
        excess = ((have - want).abs() - bound)[finite]
        assert not (excess > 0).any(), f"{backend}: off by more than the tolerance: {have} vs {want}"


def _as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


def _check_backends(op, run, rtol, atol):
    expected = _outcome(lambda: _with("reference", run))
    for backend in _backends(op):
        _assert_same(expected, _outcome(lambda: _with(backend, run)), backend, rtol, atol)


def _with(backend, run):
    with orthocore.use_backend(backend):
        return run()


FUZZ = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], deadline=None)
DTYPES = st.sampled_from([np.float32, np.float64])


@FUZZ
@given(data=st.data(), dtype=DTYPES, rows=st.sampled_from([0, 1, 2, 3, 7]), cols=st.sampled_from([1, 2, 5, 13, 64]))
def test_normalized_dot(data, dtype, rows, cols):
    a = data.draw(_tensor((rows, cols), dtype))
    b = data.draw(_tensor((rows, cols), dtype))
    grad = torch.ones(rows, dtype=a.dtype)

    def run():
        a_, b_ = a.clone().requires_grad_(), b.clone().requires_grad_()
        delta = ops.normalized_dot(a_, b_)
        return (delta.detach(), *torch.autograd.grad(delta, (a_, b_), grad)) if rows else (delta.detach(),)

    tolerance = 1e-4 if dtype == np.float32 else 1e-10
    # A gradient element is a difference of two terms each at most 1/‖x‖ (x = the row it
    # is taken for): rounding error scales with that, not with the (maybe cancelled) result.
    norms = [x.double().flatten(1).norm(dim=1, keepdim=True).to(a.dtype) for x in (a, b)]
    _check_backends("normalized_dot", run, rtol=tolerance,
                    atol=(tolerance, *(tolerance * 2 / norm for norm in norms)))  # fmt: skip


@FUZZ
@given(data=st.data(), dtype=DTYPES, rows=st.sampled_from([0, 1, 3, 5]), cols=st.sampled_from([1, 4, 11]),
       norm=st.sampled_from(["inf", "2"]), with_momentum=st.booleans())  # fmt: skip
def test_attack_step(data, dtype, rows, cols, norm, with_momentum):
    clean = data.draw(_tensor((rows, cols), dtype, unit=True))
    adv = data.draw(_tensor((rows, cols), dtype, unit=True))
    grad = data.draw(_tensor((rows, cols), dtype))
    step = data.draw(_tensor((rows,), dtype, unit=True))
    eps = data.draw(_tensor((rows,), dtype, unit=True))
    momentum = data.draw(_tensor((rows, cols), dtype)) if with_momentum else None
    tolerance = 1e-5 if dtype == np.float32 else 1e-12

    def run():
        return ops.attack_step(adv, grad, clean, step, eps, norm=norm, momentum=momentum, decay=1.0)

    _check_backends("attack_step", run, rtol=tolerance, atol=tolerance)


def _image(dtype, *, channels=st.sampled_from([1, 3]), sides=st.sampled_from([1, 2, 5, 8, 9])):
    return st.tuples(st.sampled_from([0, 1, 2]), channels, sides, sides).flatmap(
        lambda shape: _tensor(shape, dtype, unit=True)
    )


@FUZZ
@given(x=_image(np.float32), bits=st.integers(0, 9))
def test_bit_depth(x, bits):
    _check_backends("bit_depth", lambda: ops.bit_depth(x, bits), rtol=0, atol=0)


@FUZZ
@given(x=_image(np.float32, channels=st.sampled_from([1, 3]), sides=st.sampled_from([1, 8, 9, 16])),
       quality=st.sampled_from([0, 1, 50, 80, 100]))  # fmt: skip
def test_jpeg(x, quality):
    # One quantisation level of difference where a value sits on a rounding boundary.
    _check_backends("jpeg", lambda: ops.jpeg(x, quality), rtol=0, atol=1 / 255 + 1e-6)


@FUZZ
@given(x=_image(np.float32, sides=st.sampled_from([1, 3, 6])), window=st.sampled_from([0, 3, 5]),
       sigma_color=st.sampled_from([0.1, 0.5, float("nan")]))  # fmt: skip
def test_bilateral(x, window, sigma_color):
    _check_backends("bilateral", lambda: ops.bilateral(x, window, sigma_color, 2.0), rtol=1e-5, atol=1e-5)


@FUZZ
@given(x=_image(np.float32, sides=st.sampled_from([1, 3, 6])), window=st.sampled_from([1, 3, 5, 9]),
       sigma_color=st.sampled_from([0.01, 0.1, 0.5]))  # fmt: skip
def test_bilateral_backward(x, window, sigma_color):
    upstream = torch.linspace(-1, 1, x.numel()).view_as(x)

    def run():
        leaf = x.clone().requires_grad_()
        return torch.autograd.grad(ops.bilateral(leaf, window, sigma_color, 2.0), leaf, upstream)

    _check_backends("bilateral_backward", run, rtol=1e-4, atol=1e-5)


@FUZZ
@given(x=_image(np.float32, sides=st.sampled_from([1, 2, 7])), weight=st.sampled_from([0.0, 0.05, -1.0, float("inf")]),
       iters=st.sampled_from([0, 1, 10]))  # fmt: skip
def test_tv_denoise(x, weight, iters):
    _check_backends("tv_denoise", lambda: ops.tv_denoise(x, weight, iters), rtol=1e-4, atol=1e-5)


@FUZZ
@given(data=st.data(), dtype=DTYPES, rows=st.sampled_from([0, 1, 2, 3]), channels=st.sampled_from([1, 2, 3]),
       side=st.sampled_from([1, 2, 5]), upstream_params=st.booleans())  # fmt: skip
def test_batch_norm_double_backward(data, dtype, rows, channels, side, upstream_params):
    shape = (rows, channels, side, side)
    ggx, gy, x = (data.draw(_tensor(shape, dtype)) for _ in range(3))
    weight, mean, invstd = (data.draw(_tensor((channels,), dtype, layouts=("contiguous",))) for _ in range(3))
    ggw, ggb = (data.draw(_tensor((channels,), dtype, layouts=("contiguous",))) if upstream_params else None
                for _ in range(2))  # fmt: skip

    def run():
        return batch_norm_double_backward(ggx, ggw, ggb, gy, x, weight, mean, invstd)

    tolerance = 1e-4 if dtype == np.float32 else 1e-10
    _check_backends("batch_norm_double_backward", run, rtol=tolerance, atol=tolerance)


FUZZED = {"normalized_dot", "normalized_dot_backward", "attack_step", "bit_depth", "jpeg", "bilateral",
          "bilateral_backward", "tv_denoise", "batch_norm_double_backward"}


def test_the_fuzz_reaches_every_registered_op_and_compiled_backend():
    """An op or a backend missing here would make the properties above vacuous for it
    (the backward kernels run inside their op's gradient). The bilateral filter's
    backward has a CPU kernel only: on a GPU the reference's vector-Jacobian product runs."""
    assert set(dispatch.registered()) == FUZZED
    for op in dispatch.registered():
        assert ({"cpu"} if op == "bilateral_backward" else {"cpu", "triton"}) <= set(_backends(op)), op


pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
