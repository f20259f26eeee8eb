"""Command-line arguments shared by several commands, and those generated from a config
dataclass's fields (so a new config option needs no hand-written flag)."""

from __future__ import annotations

import argparse
import dataclasses

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
        nothing = action.default is None or action.default is False or action.default == []
        if nothing or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device``: auto (CUDA when a GPU is visible), cpu, cuda or cuda:N."""
    parser.add_argument("--device", default="auto", help="auto (default: CUDA when a GPU is visible), cpu, cuda or cuda:N")


def _flag(item: dataclasses.Field) -> str:
    """The option of a config field: its ``flag`` metadata, else ``--field-name``."""
    return item.metadata.get("flag", "--" + item.name.replace("_", "-"))


def _declared_default(item: dataclasses.Field):
    """A field's default as declared (None stays None: a default the config derives
    from other fields, as ``arch`` from ``data``)."""
    return item.default_factory() if item.default is dataclasses.MISSING else item.default


def add_config_arguments(parser: argparse.ArgumentParser, config_class, *, skip: tuple[str, ...] = ()) -> None:
    """One option per field of ``config_class`` (a dataclass whose fields carry ``help``,
    and optionally ``flag``, ``metavar`` and ``choices``, in their metadata), defaults
    from the class.

    A ``bool`` field is a switch, a ``list[...]`` field a repeatable option, an optional
    field (``X | None``) an option whose default is None.
    """
    for item in dataclasses.fields(config_class):
        if item.name in skip:
            continue
        flag = _flag(item)
        options = {"dest": item.name, "help": item.metadata.get("help")}
        if "metavar" in item.metadata:
            options["metavar"] = item.metadata["metavar"]
        kind = str(item.type).split(" | ")[0]  # annotations are strings here (postponed evaluation)
        if kind == "bool":
            options["action"] = "store_true"
        elif kind.startswith("list["):
            options.update(action="append", default=[], type=_TYPES[kind[5:-1]])
        else:
            choices = item.metadata.get("choices")
            options.update(type=_TYPES[kind], default=_declared_default(item),
                           choices=choices() if callable(choices) else choices)  # fmt: skip
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
    """``config_class`` from the parsed options of :func:`add_config_arguments`, and ``values``."""
    names = [item.name for item in dataclasses.fields(config_class) if item.name not in values]
    return config_class(**{name: getattr(args, name) for name in names}, **values)
