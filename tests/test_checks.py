"""orthocore.checks: the one input-check module every layer uses."""

import math

import pytest
import torch

from orthocore import checks
from orthocore.checks import ArgumentTypeError


def test_a_wrong_type_is_both_a_type_error_and_a_value_error():
    with pytest.raises(ArgumentTypeError) as caught:
        checks.check_number("3", "steps", low=1, integer=True)
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, ValueError)
    assert str(caught.value) == "steps must be an integer >= 1, got str '3'"


@pytest.mark.parametrize(
    ("value", "bounds", "error", "message"),
    [
        (True, {"integer": True}, ArgumentTypeError, "n must be an integer, got bool True"),  # bools are not numbers
        (2.0, {"integer": True}, ArgumentTypeError, "n must be an integer, got float 2.0"),  # no silent truncation
        (None, {}, ArgumentTypeError, "n must be a number, got NoneType None"),
        (math.nan, {}, ValueError, "n must be a finite number, got nan"),
        (math.inf, {"low": 0}, ValueError, "n must be a finite number >= 0, got inf"),
        (-math.inf, {"high": 1}, ValueError, "n must be a finite number <= 1, got -inf"),
        (0, {"low": 0, "low_open": True}, ValueError, "n must be a finite number > 0, got 0.0"),
        (1.5, {"low": 0, "high": 1}, ValueError, r"n must be a finite number in \[0, 1\], got 1.5"),
        (0.0, {"low": 0, "high": 1, "low_open": True}, ValueError, r"n must be a finite number in \(0, 1\], got 0.0"),
        (1, {"high": 1, "high_open": True}, ValueError, "n must be a finite number < 1, got 1.0"),
        (0, {"low": 1, "high": 8, "integer": True}, ValueError, "n must be an integer in 1..8, got 0"),
        (4, {"low": 1, "odd": True}, ValueError, "n must be odd, got 4"),
    ],
)
def test_check_number_rules(value, bounds, error, message):
    with pytest.raises(error, match=f"^{message}$"):
        checks.check_number(value, "n", **bounds)


def test_check_number_returns_the_plain_value():
    assert checks.check_number(torch.tensor(3).item(), "n", integer=True) == 3
    assert type(checks.check_number(3, "eps", low=0)) is float
    assert checks.check_number(5, "window", low=1, odd=True, where="bilateral") == 5


def test_where_prefixes_the_message():
    with pytest.raises(ValueError, match="^jpeg: quality must be an integer in 1..100, got 101$"):
        checks.check_number(101, "quality", low=1, high=100, integer=True, where="jpeg")


def test_number_lists():
    assert checks.check_number_list(torch.tensor([0.5, 1.0], dtype=torch.float64), "eps", low=0) == (0.5, 1.0)
    with pytest.raises(ValueError, match="eps must not be an empty list"):
        checks.check_number_list([], "eps")
    with pytest.raises(ArgumentTypeError, match="eps must be a list of numbers, got str"):
        checks.check_number_list("0.1", "eps")
    with pytest.raises(ValueError, match=r"eps must be a finite number >= 0, got -0.1"):
        checks.check_number_list([0.1, -0.1], "eps", low=0)


def test_check_bool():
    assert checks.check_bool(False, "augment") is False
    for bad in ("no", 0, None):
        with pytest.raises(ArgumentTypeError, match="augment must be true or false"):
            checks.check_bool(bad, "augment")


def test_check_choice():
    assert checks.check_choice("abs", "penalty", ("abs", "square")) == "abs"
    with pytest.raises(ValueError, match="penalty must be one of abs, square; got 'cube'"):
        checks.check_choice("cube", "penalty", ("abs", "square"))
    with pytest.raises(ValueError, match="penalty must be one of"):
        checks.check_choice(["abs"], "penalty", ("abs", "square"))  # unhashable: refused, not a crash


@pytest.mark.parametrize(
    ("shape", "layout", "sizes"),
    [
        ((4, 3, 8, 8), ["B", "C", "H", "W"], {"B": 4, "C": 3, "H": 8, "W": 8}),
        ((5,), ["B", "*"], {"B": 5}),  # the star may stand for no dimension
        ((5, 2, 7), ["B", "*"], {"B": 5}),
        ((2, 3, 4, 4), ["B", "C", "*"], {"B": 2, "C": 3}),
        ((6, 6), ["N", "N"], {"N": 6}),
        ((3,), [3], {}),
    ],
)
def test_check_shape_accepts_and_binds(shape, layout, sizes):
    assert checks.check_shape(torch.zeros(shape), "x", layout) == sizes


@pytest.mark.parametrize(
    ("shape", "layout", "message"),
    [
        ((3, 8, 8), ["B", "C", "H", "W"], r"x must have shape \(B, C, H, W\), got \(3, 8, 8\)"),
        ((), ["B", "*"], r"x must have shape \(B, \*\), got \(\)"),
        ((6, 5), ["N", "N"], r"x must have shape \(N, N\), got \(6, 5\)"),  # a letter is one size
        ((2,), [3], r"x must have shape \(3,\), got \(2,\)"),
        ((2, 3), ["B", "C", "*", "H"], r"x must have shape \(B, C, \*, H\)"),
    ],
)
def test_check_shape_names_the_layout(shape, layout, message):
    with pytest.raises(ValueError, match=message):
        checks.check_shape(torch.zeros(shape), "x", layout)


def test_check_tensor_and_same():
    with pytest.raises(ArgumentTypeError, match="a must be a torch.Tensor, got list"):
        checks.check_tensor([1.0], "a")
    with pytest.raises(ArgumentTypeError, match="a must be a floating-point tensor, got dtype torch.int64"):
        checks.check_tensor(torch.ones(2, dtype=torch.int64), "a", floating=True)
    with pytest.raises(ValueError, match="a and b must have the same shape"):
        checks.check_same(torch.ones(2), torch.ones(3), ("a", "b"))
    with pytest.raises(TypeError, match="a and b must have the same dtype"):
        checks.check_same(torch.ones(2), torch.ones(2, dtype=torch.float64), ("a", "b"))
    with pytest.raises(ValueError, match="a and b must be on the same device"):
        checks.check_same(torch.ones(2), torch.ones(2, device="meta"), ("a", "b"))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_refused_the_same_way(bad):
    x = torch.full((1, 1, 2, 2), 0.5)
    x[0, 0, 1, 1] = bad
    name = "NaN" if math.isnan(bad) else "inf"
    with pytest.raises(ValueError, match=rf"^x must be finite and in \[0, 1\], got {name} values$"):
        checks.check_unit_range(x, "x")
    with pytest.raises(ValueError, match=rf"^ops: x must be finite, got {name} values$"):
        checks.check_finite(x, "x", where="ops")
    with pytest.raises(ValueError, match=rf"images must be finite and in \[0, 1\], got {name} values"):
        checks.check_images(x)


def test_image_checks():
    assert checks.check_images(torch.rand(2, 3, 4, 5)) == {"B": 2, "C": 3, "H": 4, "W": 5}
    checks.check_images(torch.zeros(0, 3, 4, 4))  # an empty batch is fine unless refused
    with pytest.raises(ValueError, match="images must not be empty"):
        checks.check_images(torch.zeros(0, 3, 4, 4), empty=False)
    with pytest.raises(ValueError, match=r"images must be in \[0, 1\] .*got values in \[-0.5, 0.5\]"):
        checks.check_images(torch.full((1, 1, 2, 2), 0.5).index_fill_(3, torch.tensor([0]), -0.5))
    checks.check_images(torch.full((1, 1, 2, 2), 7.0), values=False)  # layout only
    with pytest.raises(ValueError, match="x must have 1 or 3 channels, got 2"):
        checks.check_images(torch.rand(1, 2, 4, 4), "x", channels=(1, 3))


def test_image_values_are_not_read_while_compiling():
    @torch.compile(fullgraph=True, backend="eager")
    def checked(x):
        checks.check_images(x)
        return x * 2

    torch.testing.assert_close(checked(torch.full((1, 1, 2, 2), 0.25)), torch.full((1, 1, 2, 2), 0.5))


def test_labels_logits_and_model():
    checks.check_labels(torch.tensor([0, 2]), 2)
    with pytest.raises(ArgumentTypeError, match="labels must be an integer tensor"):
        checks.check_labels(torch.tensor([0.0, 1.0]), 2)
    with pytest.raises(ValueError, match=r"classes must have shape \(3,\), got \(2,\)"):
        checks.check_labels(torch.tensor([0, 1]), 3, name="classes")
    with pytest.raises(ValueError, match="labels must be class indices >= 0"):
        checks.check_labels(torch.tensor([0, -1]), 2)
    with pytest.raises(ValueError, match="labels must be < the model's 3 output classes, got label 3"):
        checks.check_logits(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ArgumentTypeError, match="model parameters are torch.float32 but images are torch.float64"):
        checks.check_model(torch.nn.Linear(2, 2), like=torch.zeros(1, 2, dtype=torch.float64))
    with pytest.raises(ArgumentTypeError, match="model must be a callable"):
        checks.check_model(3)


def test_text_and_module_checks():
    from torch import nn

    assert checks.check_text("runs/m", "out", "a folder path") == "runs/m"
    with pytest.raises(checks.ArgumentTypeError, match="out: expected a folder path, got int 5"):
        checks.check_text(5, "out", "a folder path")
    assert checks.check_text_list([], "references") == []
    with pytest.raises(checks.ArgumentTypeError, match=r"references: expected a list of strings, got \['a', 1\]"):
        checks.check_text_list(["a", 1], "references")
    checks.check_model(nn.Linear(2, 2), module=True)
    with pytest.raises(checks.ArgumentTypeError, match="defended: model must be a torch.nn.Module, got function"):
        checks.check_model(lambda x: x, module=True, where="defended")
