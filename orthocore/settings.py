"""Settings declared once: a config dataclass's field carries its default, its help, and
how the command line spells and reads it, so that every flag, TOML key and default is
generated from the one declaration (:func:`orthocore.cli._arguments.add_config_arguments`).

Also the text forms the command line reads for the fields that are not a plain number or
string: an ε grid and a list of names.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch

from orthocore.checks import check_number


BOUNDS = ("low", "high", "low_open", "high_open")


def option(default, help: str, **metadata):
    """A config field with its command-line description: ``help``, and optionally
    ``flag`` (the option's name when it is not ``--field-name``), ``metavar``,
    ``choices`` (a tuple, or a function returning one), ``parse`` (reads the option's
    text into the field's value, raising ``ValueError`` for bad text) and a number's
    bounds (``low``, ``high``, ``low_open``, ``high_open`` as
    :func:`orthocore.checks.check_number` takes them; :func:`check_bounds` checks them
    and so does the command line). A callable ``default`` is the field's default factory."""
    factory = {"default_factory": default} if callable(default) else {"default": default}
    return dataclasses.field(**factory, metadata={"help": help, **metadata})


def declared_default(item: dataclasses.Field):
    """A field's default as declared (None stays None: a default the config derives
    from other fields, as ``arch`` from ``data``)."""
    return item.default_factory() if item.default is dataclasses.MISSING else item.default


def type_name(item: dataclasses.Field) -> str:
    """A field's type as written (``"int"``, ``"list[str]"``), without ``| None``."""
    written = item.type if isinstance(item.type, str) else getattr(item.type, "__name__", str(item.type))
    return written.split(" | ")[0]


def check_bounds(config, settings_class=None) -> None:
    """Checks every field of ``settings_class`` (default: ``config``'s class) that
    declares bounds, as a number (an integer for an ``int`` field); raises ``ValueError``
    naming the first bad one."""
    for item in dataclasses.fields(settings_class or config):
        bounds = {key: item.metadata[key] for key in BOUNDS if key in item.metadata}
        if bounds:
            check_number(getattr(config, item.name), item.name, integer=type_name(item) == "int", **bounds)


def eps_grid(text: str) -> tuple[float, ...]:
    """An ε grid from ``start:stop:count`` (``count`` evenly spaced values, both ends
    included) or a comma-separated list; values are fractions of the [0, 1] range.

    Examples:
        >>> eps_grid("0.0:0.5:3")
        (0.0, 0.25, 0.5)
        >>> eps_grid("0.05,0.1")
        (0.05, 0.1)
    """
    try:
        if ":" in text:
            start, stop, count = text.split(":")
            start, stop, count = float(start), float(stop), int(count)
            if count < 1 or stop < start:
                raise ValueError
            values = torch.linspace(start, stop, count, dtype=torch.float64).tolist()
        else:
            values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"expected start:stop:count (start <= stop, count >= 1) or a comma list, got {text!r}") from None
    if not values or any(not math.isfinite(v) or v < 0 for v in values):
        raise ValueError(f"ε values must be finite and >= 0, got {text!r}")
    return tuple(values)


def name_list(check: Callable[[list[str]], tuple[str, ...]]) -> Callable[[str], tuple[str, ...]]:
    """Reads comma-separated names (lower-cased) and checks them with ``check``."""

    def parse(text: str) -> tuple[str, ...]:
        return check([name.strip().lower() for name in text.split(",") if name.strip()])

    return parse
