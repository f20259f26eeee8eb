"""Argument checks for every layer of orthocore, one rule per concept.

Each check names the argument and what was expected, and is meant to run before any
work starts. ``where`` (an op's or class's name) prefixes the message when the argument
name alone would be ambiguous, e.g. ``"jpeg: quality must be an integer in 1..100, got 0"``.

The rules:

* **Types.** A value of the wrong type raises :class:`ArgumentTypeError`, which is both a
  ``TypeError`` (what Python raises for a wrong type) and a ``ValueError`` (what the CLI
  and the config readers report as bad input), so one ``except ValueError`` reports every
  bad argument. Booleans are never numbers.
* **Numbers** (:func:`check_number`): finite, within the stated bounds; integers where
  an integer is expected (a float such as ``2.0`` is refused, not truncated). Flags
  (:func:`check_bool`) are bools, never strings read as true.
* **Tensors** (:func:`check_tensor`, :func:`check_shape`, :func:`check_same`): shapes are
  named by a layout such as ``["B", "C", "H", "W"]`` (kornia's ``KORNIA_CHECK_SHAPE``).
* **Values** (:func:`check_finite`, :func:`check_unit_range`): NaN and inf are refused the
  same way everywhere; images hold values in [0, 1]. These read the data (one pass, one
  device sync) and are skipped while ``torch.compile`` traces, when values are unknown.
* **Images** (:func:`check_images`): a floating :math:`(B, C, H, W)` batch with values in
  [0, 1] — the convention of every attack, defense and op.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection, Hashable, Sequence

import torch
from torch import Tensor, nn

IMAGE_LAYOUT = ("B", "C", "H", "W")


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (both a ``TypeError`` and a ``ValueError``)."""


def _prefix(where: str | None) -> str:
    return f"{where}: " if where else ""


def _layout_text(layout: Sequence) -> str:
    return "(" + ", ".join(str(d) for d in layout) + ("," if len(layout) == 1 else "") + ")"


# --------------------------------------------------------------------------- numbers
def _bounds_text(low, high, low_open: bool, high_open: bool, integer: bool) -> str:
    if integer and low is not None and high is not None:
        return f" in {low}..{high}"
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high:g}"
    return ""


def check_number(
    value,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    odd: bool = False,
    where: str | None = None,
) -> int | float:
    """Returns ``value`` as an ``int`` or ``float`` after checking it.

    Args:
        value: the value given.
        name: the argument's name, for the message.
        low, high: bounds (``None``: unbounded on that side).
        low_open, high_open: whether the bound itself is excluded (``> 0`` rather than ``>= 0``).
        integer: an integer is required (``odd`` implies it).
        odd: an odd integer is required.
        where: prefix of the message (an op or class name), if any.

    Raises:
        ArgumentTypeError: not a number (or not an integer where one is needed).
        ValueError: NaN, inf, out of bounds, or even where odd is needed.

    Examples:
        >>> check_number(3, "steps", low=1, integer=True)
        3
        >>> check_number(101, "quality", low=1, high=100, integer=True, where="jpeg")
        Traceback (most recent call last):
        ...
        ValueError: jpeg: quality must be an integer in 1..100, got 101
    """
    integer = integer or odd
    bounds = _bounds_text(low, high, low_open, high_open, integer)
    kind = "an integer" if integer else "a number"
    wanted = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, wanted):
        raise ArgumentTypeError(f"{_prefix(where)}{name} must be {kind}{bounds}, got {type(value).__name__} {value!r}")
    kind = "an integer" if integer else "a finite number"
    value = int(value) if integer else float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if not math.isfinite(value) or too_low or too_high:
        raise ValueError(f"{_prefix(where)}{name} must be {kind}{bounds}, got {value}")
    if odd and value % 2 == 0:
        raise ValueError(f"{_prefix(where)}{name} must be odd, got {value}")
    return value


def check_bool(value, name: str, *, where: str | None = None) -> bool:
    """Returns ``value`` if it is a bool; a string such as ``"no"`` is refused, not read as true."""
    if not isinstance(value, bool):
        raise ArgumentTypeError(f"{_prefix(where)}{name} must be true or false, got {type(value).__name__} {value!r}")
    return value


def check_text(value, name: str, expected: str = "a string", *, where: str | None = None) -> str:
    """Returns ``value`` if it is a string; ``expected`` says what it should be.

    Examples:
        >>> check_text("runs/m", "out", "a folder path")
        'runs/m'
    """
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{_prefix(where)}{name}: expected {expected}, got {type(value).__name__} {value!r}")
    return value


def check_text_list(values, name: str, expected: str = "a list of strings", *, where: str | None = None) -> list[str]:
    """Returns ``values`` if it is a list of strings (possibly empty)."""
    if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
        raise ArgumentTypeError(f"{_prefix(where)}{name}: expected {expected}, got {values!r}")
    return values


def check_number_list(values, name: str, **bounds) -> tuple[int | float, ...]:
    """A non-empty list, tuple or 1-D tensor of numbers, each checked by :func:`check_number`
    with ``bounds``; returned as a tuple.

    Examples:
        >>> check_number_list([0.01, 0.03], "eps", low=0)
        (0.01, 0.03)
    """
    if isinstance(values, Tensor):
        if values.dim() != 1:
            raise ValueError(f"{name} must be a list of numbers, got a tensor of shape {tuple(values.shape)}")
        values = values.tolist()
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ArgumentTypeError(f"{name} must be a list of numbers, got {type(values).__name__} {values!r}")
    if not values:
        raise ValueError(f"{name} must not be an empty list")
    return tuple(check_number(value, name, **bounds) for value in values)


def check_choice(value, name: str, choices: Collection, *, where: str | None = None):
    """Returns ``value`` if it is one of ``choices``; raises ``ValueError`` naming them otherwise."""
    if isinstance(value, Hashable) and value in choices:
        return value
    raise ValueError(f"{_prefix(where)}{name} must be one of {', '.join(map(str, choices))}; got {value!r}")


# --------------------------------------------------------------------------- tensors
def check_tensor(x, name: str, *, floating: bool = False, where: str | None = None) -> None:
    """Raises :class:`ArgumentTypeError` unless ``x`` is a tensor (a floating one when ``floating``)."""
    if not isinstance(x, Tensor):
        raise ArgumentTypeError(f"{_prefix(where)}{name} must be a torch.Tensor, got {type(x).__name__}")
    if floating and not x.is_floating_point():
        raise ArgumentTypeError(f"{_prefix(where)}{name} must be a floating-point tensor, got dtype {x.dtype}")


def check_shape(x: Tensor, name: str, layout: Sequence[str | int], *, where: str | None = None) -> dict[str, int]:
    """Checks ``x``'s shape against a layout and returns the sizes its letters stand for.

    Args:
        x: the tensor.
        name: the argument's name.
        layout: one entry per dimension: a letter (any size, the same size wherever the
            letter recurs), an int (exactly that size), or ``"*"`` once (any number of
            dimensions, possibly none).
        where: prefix of the message, if any.

    Returns:
        Letter → size, e.g. ``{"B": 4, "C": 3, "H": 32, "W": 32}``.

    Raises:
        ValueError: the shape does not fit, naming the argument and the layout.

    Examples:
        >>> check_shape(torch.zeros(4, 3, 8, 8), "images", ["B", "C", "H", "W"])
        {'B': 4, 'C': 3, 'H': 8, 'W': 8}
        >>> check_shape(torch.zeros(3, 8, 8), "images", ["B", "C", "H", "W"])
        Traceback (most recent call last):
        ...
        ValueError: images must have shape (B, C, H, W), got (3, 8, 8)
    """
    shape = tuple(x.shape)
    fail = ValueError(f"{_prefix(where)}{name} must have shape {_layout_text(layout)}, got {_layout_text(shape)}")
    if "*" in layout:
        star = list(layout).index("*")
        tail = len(layout) - star - 1
        if len(shape) < len(layout) - 1:
            raise fail
        layout = list(layout[:star]) + list(layout[star + 1 :])
        shape = shape[:star] + (shape[len(shape) - tail :] if tail else ())
    if len(shape) != len(layout):
        raise fail
    sizes: dict[str, int] = {}
    for want, got in zip(layout, shape):
        if isinstance(want, int):
            if want != got:
                raise fail
        elif sizes.setdefault(want, got) != got:
            raise fail
    return sizes


def check_same(x: Tensor, y: Tensor, names: tuple[str, str], *, where: str | None = None) -> None:
    """Raises unless ``x`` and ``y`` share shape, dtype and device (``TypeError`` for dtype)."""
    a, b = names
    if x.shape != y.shape:
        got = f"{tuple(x.shape)} and {tuple(y.shape)}"
        raise ValueError(f"{_prefix(where)}{a} and {b} must have the same shape, got {got}")
    if x.dtype != y.dtype:
        raise ArgumentTypeError(f"{_prefix(where)}{a} and {b} must have the same dtype, got {x.dtype} and {y.dtype}")
    if x.device != y.device:
        raise ValueError(f"{_prefix(where)}{a} and {b} must be on the same device, got {x.device} and {y.device}")


# ---------------------------------------------------------------------------- values
def _extremes(x: Tensor) -> tuple[float, float] | None:
    """``(min, max)`` of ``x`` in one pass and one sync; ``None`` when there is nothing to
    read (no elements, or values unknown while ``torch.compile`` traces). NaN propagates."""
    if x.numel() == 0 or torch.compiler.is_compiling():
        return None
    low, high = torch.stack(torch.aminmax(x)).tolist()
    return low, high


def _non_finite(low: float, high: float) -> str | None:
    if math.isnan(low) or math.isnan(high):
        return "NaN"
    if math.isinf(low) or math.isinf(high):
        return "inf"
    return None


def _finite_extremes(x: Tensor, message: str) -> tuple[float, float] | None:
    """``(min, max)`` of ``x`` (None when empty); ``ValueError(message + "got NaN values")``
    (or inf) when it holds one."""
    extremes = _extremes(x)
    bad = extremes and _non_finite(*extremes)
    if bad:
        raise ValueError(f"{message}, got {bad} values")
    return extremes


def check_finite(x: Tensor, name: str, *, low: float | None = None, where: str | None = None) -> None:
    """Raises ``ValueError`` if ``x`` holds NaN or inf, or (given ``low``) a value below ``low``."""
    extremes = _finite_extremes(x, f"{_prefix(where)}{name} must be finite")
    if extremes is not None and low is not None and extremes[0] < low:
        raise ValueError(f"{_prefix(where)}{name} must be >= {low:g}, got {extremes[0]:.4g}")


def check_unit_range(x: Tensor, name: str, *, where: str | None = None) -> None:
    """Raises ``ValueError`` unless every value of ``x`` is finite and in [0, 1]."""
    extremes = _finite_extremes(x, f"{_prefix(where)}{name} must be finite and in [0, 1]")
    if extremes is None:
        return
    low, high = extremes
    if low < 0 or high > 1:
        raise ValueError(
            f"{_prefix(where)}{name} must be in [0, 1] (normalisation belongs inside the model), "
            f"got values in [{low:.4g}, {high:.4g}]"
        )


def check_images(
    x,
    name: str = "images",
    *,
    channels: Collection[int] | None = None,
    empty: bool = True,
    values: bool = True,
    where: str | None = None,
) -> dict[str, int]:
    """A floating :math:`(B, C, H, W)` image batch, values finite and in [0, 1].

    Args:
        x: the images.
        name: the argument's name.
        channels: the channel counts allowed (``None``: any).
        empty: whether a batch of no images (or of empty images) is allowed.
        values: whether to read the values (skip where only the layout matters).
        where: prefix of the message, if any.

    Returns:
        The sizes ``{"B", "C", "H", "W"}``.
    """
    check_tensor(x, name, floating=True, where=where)
    sizes = check_shape(x, name, IMAGE_LAYOUT, where=where)
    if channels is not None and sizes["C"] not in channels:
        allowed = " or ".join(str(c) for c in channels)
        raise ValueError(f"{_prefix(where)}{name} must have {allowed} channels, got {sizes['C']} (shape {tuple(x.shape)})")
    if not empty and x.numel() == 0:
        raise ValueError(f"{_prefix(where)}{name} must not be empty, got shape {tuple(x.shape)}")
    if values:
        check_unit_range(x, name, where=where)
    return sizes


def check_labels(labels, batch: int, *, name: str = "labels", where: str | None = None) -> None:
    """Class indices: an integer :math:`(B,)` tensor of values >= 0."""
    check_tensor(labels, name, where=where)
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ArgumentTypeError(f"{_prefix(where)}{name} must be an integer tensor of class indices, got dtype {labels.dtype}")
    check_shape(labels, name, [batch], where=where)
    if batch and labels.min().item() < 0:
        raise ValueError(f"{_prefix(where)}{name} must be class indices >= 0, got {labels.min().item()}")


def check_logits(logits, labels: Tensor, *, where: str | None = None) -> None:
    """A model's output: :math:`(n, K)` logits with every label below ``K``."""
    if not isinstance(logits, Tensor) or logits.dim() != 2:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"{_prefix(where)}model must return (B, num_classes) logits, got {shape}")
    classes = logits.shape[1]
    if labels.numel() and labels.max().item() >= classes:
        raise ValueError(
            f"{_prefix(where)}labels must be < the model's {classes} output classes, got label {labels.max().item()}"
        )


def check_model(model, name: str = "model", *, like: Tensor | None = None, module: bool = False,
                where: str | None = None) -> None:  # fmt: skip
    """A callable model (a ``torch.nn.Module`` with ``module``); with ``like``, its
    parameters on ``like``'s device and dtype."""
    if module and not isinstance(model, nn.Module):
        raise ArgumentTypeError(f"{_prefix(where)}{name} must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(model):
        raise ArgumentTypeError(f"{_prefix(where)}{name} must be a callable torch.nn.Module, got {type(model).__name__}")
    parameter = next(iter(model.parameters()), None) if isinstance(model, nn.Module) else None
    if like is None or parameter is None:
        return
    if parameter.device != like.device:
        raise ValueError(f"{_prefix(where)}{name} is on {parameter.device} but the images are on {like.device}")
    if parameter.is_floating_point() and parameter.dtype != like.dtype:
        raise ArgumentTypeError(f"{_prefix(where)}{name} parameters are {parameter.dtype} but images are {like.dtype}")
