"""Command-line arguments shared by several commands, and those generated from a config
dataclass's fields (so a new config option needs no hand-written flag)."""

from __future__ import annotations

import argparse
import dataclasses

from orthocore.checks import check_number
from orthocore.settings import BOUNDS, declared_default, type_name

_TYPES = {"int": int, "float": float, "str": str}


def int_at_least(low: int):
    """An argparse type: an integer >= ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return value

    return parse


def seed_list(text: str) -> list[int]:
    """An argparse type: comma-separated distinct integers >= 0 (``"0,1,2"``)."""
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        seeds = [-1]
    if min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected distinct integers >= 0 separated by commas, got {text!r}")
    return seeds


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none to show (None, an empty
    list, an off switch) or the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        nothing = action.default is None or isinstance(action.default, bool) or action.default == []
        if nothing or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


# What a model argument takes (orthocore.model_specs): a checkpoint or any model a user brings.
MODEL = "an orthocore checkpoint, a torch.export .pt2 file, torchvision:NAME:WEIGHTS or MODULE:FACTORY:WEIGHTS"


def missing_model_files(specs: list[str]) -> list[str]:
    """The model specs among ``specs`` whose file does not exist."""
    from orthocore.model_specs import parse_model_spec

    return [spec for spec in specs if not parse_model_spec(spec).file.is_file()]


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device``: auto (CUDA when a GPU is visible), cpu, cuda or cuda:N."""
    parser.add_argument("--device", default="auto", help="auto (default: CUDA when a GPU is visible), cpu, cuda or cuda:N")


def _flag(item: dataclasses.Field) -> str:
    """The option of a config field: its ``flag`` metadata, else ``--field-name``."""
    return item.metadata.get("flag", "--" + item.name.replace("_", "-"))


def _argparse_type(parse):
    """An argparse type from a field's ``parse`` (which raises ``ValueError`` on bad text)."""

    def read(text: str):
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    read.__name__ = getattr(parse, "__name__", "value")
    return read


def _bounded(item: dataclasses.Field, kind):
    """Reads a number option and checks the field's declared bounds (plain ``kind``
    where it declares none)."""
    bounds = {key: item.metadata[key] for key in BOUNDS if key in item.metadata}
    if not bounds:
        return kind

    def read(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise ValueError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        return check_number(value, item.name, integer=kind is int, **bounds)

    read.__name__ = kind.__name__
    return read


def _shown(value) -> str:
    """A default as the command line would spell it."""
    if isinstance(value, (list, tuple)):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return str(value)


def add_config_arguments(parser: argparse.ArgumentParser, config_class, *, skip: tuple[str, ...] = (),
                         overrides: bool = False) -> None:  # fmt: skip
    """One option per field of ``config_class`` (a dataclass whose fields carry ``help``,
    and optionally ``flag``, ``metavar``, ``choices`` and ``parse``, in their metadata,
    :func:`orthocore.settings.option`), defaults from the class.

    A ``bool`` field is a switch (its flag turns a default of True off), a ``list[...]``
    field a repeatable option (given, it replaces the default list), a field with
    ``parse`` an option read by it (ε grids, name lists), an optional field (``X | None``)
    an option whose default is None. With ``overrides`` (options that override a
    configuration file) every option is ``--field-name`` and defaults to None (not given:
    the file's value stands), a ``bool`` is ``--name``/``--no-name``, and the help still
    names the class's default.
    """
    for item in dataclasses.fields(config_class):
        if item.name in skip:
            continue
        default = declared_default(item)
        flag = "--" + item.name.replace("_", "-") if overrides else _flag(item)
        options = {"dest": item.name, "help": item.metadata.get("help")}
        if type_name(item) != "bool":  # the flag's own name, not the field's, where they differ
            options["metavar"] = item.metadata.get("metavar", flag.lstrip("-").replace("-", "_").upper())
        kind = type_name(item)
        if kind == "bool":
            options["action"] = "store_false" if default else "store_true"
        elif kind.startswith("list["):
            options.update(action="append", default=None, type=_TYPES[kind[5:-1]])
            if default:
                options["help"] += f" (default: {'; '.join(map(str, default))})"
        else:
            choices = item.metadata.get("choices")
            parse = item.metadata.get("parse")
            options.update(type=_argparse_type(parse or _bounded(item, _TYPES[kind])), default=default,
                           choices=choices() if callable(choices) else choices)  # fmt: skip
            if parse and default is not None:
                options["help"] += f" (default {_shown(default)})"
        if overrides:
            options["default"] = None
            if kind == "bool":
                options["action"] = argparse.BooleanOptionalAction
            if "default" not in options["help"] and default is not None:
                options["help"] += f" (default: {_shown(default)})"
            options["help"] += "; overrides the configuration file"
        options["help"] = options["help"].replace("%", "%%")  # argparse formats help with %
        parser.add_argument(flag, **options)


def given_arguments(config_class, args: argparse.Namespace) -> dict[str, tuple[str, object]]:
    """The fields of ``config_class`` whose option was set to other than its default:
    field name → (flag, value)."""
    defaults = config_class()
    given = {}
    for item in dataclasses.fields(config_class):
        value = getattr(args, item.name, None)
        default = getattr(defaults, item.name)
        if value is not None and value != default and not (value == [] and not default):
            given[item.name] = (_flag(item), value)
    return given


def config_from_arguments(config_class, args: argparse.Namespace, **values):
    """``config_class`` from the parsed options of :func:`add_config_arguments`, and
    ``values``; a repeatable option not given takes the field's default list."""
    chosen = {}
    for item in dataclasses.fields(config_class):
        if item.name in values:
            continue
        value = getattr(args, item.name)
        chosen[item.name] = declared_default(item) if value is None and type_name(item).startswith("list[") else value
    return config_class(**chosen, **values)


def overrides_of(config_class, args: argparse.Namespace) -> dict:
    """The fields of ``config_class`` given on a command line whose options were added
    with ``overrides`` (those not None)."""
    return {item.name: getattr(args, item.name) for item in dataclasses.fields(config_class)
            if getattr(args, item.name, None) is not None}  # fmt: skip
