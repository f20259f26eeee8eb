"""The ``orthocore`` command line: a thin argparse layer over library calls, one module
per group of commands, each adding its subcommands with ``add_parsers``."""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import warnings

from orthocore import distributed
from orthocore.cli import attack, backends, security, study, train
from orthocore.runtime import retain_freed_memory


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (the usage is one ``--help`` away);
    its subcommands' parsers are of the same class."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="orthocore", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True)
    for group in (study, train, attack, security, backends):
        group.add_parsers(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    retain_freed_memory()  # every command's tensors reuse the memory the last ones freed

    def one_line(message, category, filename, lineno, file=None, line=None):  # no source path, no code line
        if distributed.world().main:  # under torchrun every process would say it
            print(f"orthocore {args.command}: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = one_line
        try:
            if distributed.launched():
                _join(args)
            return args.func(args)
        except (ValueError, OSError, pickle.UnpicklingError) as error:  # bad input: say what, no traceback
            if args.debug:
                raise
            where = f" (process {os.environ['RANK']} of {os.environ['WORLD_SIZE']})" if distributed.launched() else ""
            print(f"orthocore {args.command}: error{where}: {error}", file=sys.stderr)
            return 2
        finally:
            distributed.stop()


def _join(args: argparse.Namespace) -> None:
    """Under ``torchrun``: joins the process group, for the commands that split their
    work among processes (``distributed=True`` in their parser's defaults)."""
    if not getattr(args, "distributed", False):
        raise ValueError(f"torchrun: orthocore {args.command} runs in one process; start it without torchrun")
    distributed.start(getattr(args, "device", "auto"))


if __name__ == "__main__":
    sys.exit(main())
