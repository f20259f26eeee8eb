"""The ``orthocore`` command line: a thin argparse layer over library calls, one module
per group of commands, each adding its subcommands with ``add_parsers``.

Every command runs inside :func:`orthocore.interrupts.stop_on_sigterm` and
:func:`orthocore.distributed.session`. A command whose parser declares ``writes``
(``"folder"``: ``--out`` is a folder; ``"file"``: the path or prefix of its files) holds
the lock on ``--out`` (:func:`orthocore.locks.output_lock`, rank 0 for a ``torchrun``
job) while it runs; ``train``, ``run`` and ``demo`` take theirs in the library
(:func:`orthocore.train.train`, :func:`orthocore.study.run_study`), which locks for
every caller.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pickle
import sys
import warnings

from orthocore import distributed, interrupts
from orthocore.cli import attack, backends, security, study, train
from orthocore.locks import output_lock
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
    # torchrun's rank, read from its environment: the process group is gone by the time an
    # interruption is reported
    main_process = os.environ.get("RANK", "0") == "0" or not distributed.launched()

    def one_line(message, category, filename, lineno, file=None, line=None):  # no source path, no code line
        if main_process:  # under torchrun every process would say it
            print(f"orthocore {args.command}: warning: {message}", file=sys.stderr)

    where = f" (process {os.environ['RANK']} of {os.environ['WORLD_SIZE']})" if distributed.launched() else ""
    with warnings.catch_warnings(), interrupts.stop_on_sigterm():
        warnings.showwarning = one_line
        try:
            with distributed.session(getattr(args, "device", "auto"), join=getattr(args, "distributed", False)):
                with _output_held(args):
                    return args.func(args)
        except interrupts.Interrupted as stopped:
            if main_process:
                print(f"orthocore {args.command}: {stopped}; {_resume_hint(args)}", file=sys.stderr)
            return interrupts.EXIT_STATUS
        except KeyboardInterrupt:
            print(f"orthocore {args.command}: interrupted (Ctrl-C){where}; {_resume_hint(args)}", file=sys.stderr)
            return 130
        except (ValueError, OSError, pickle.UnpicklingError) as error:  # bad input: say what, no traceback
            if args.debug:
                raise
            print(f"orthocore {args.command}: error{where}: {error}", file=sys.stderr)
            return 2


def _output_held(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """The lock on the command's ``--out`` when its parser declares ``writes``."""
    writes, out = getattr(args, "writes", None), getattr(args, "out", None)
    if writes is None or not out:
        return contextlib.nullcontext()
    return distributed.held_on_main(lambda: output_lock(out, folder=writes == "folder"))


def _resume_hint(args: argparse.Namespace) -> str:
    """How to continue the interrupted command (its parser's ``resume_hint`` default: a
    function of the arguments, else the generic advice)."""
    hint = getattr(args, "resume_hint", None)
    return hint(args) if callable(hint) else "run the same command again: finished work is reused"


if __name__ == "__main__":
    sys.exit(main())
