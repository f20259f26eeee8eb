"""``orthocore ARGS`` for ``torchrun_soak.sh``. With ``ORTHOCORE_SOAK_MALLOC`` set to
``retain`` (glibc's thresholds fixed as :func:`orthocore.runtime.retain_freed_memory`
fixes them) or ``glibc`` (glibc's defaults, untouched), that choice is forced on every
rank, whatever the package itself decides under torchrun."""

import os
import sys

from orthocore import cli, runtime
from orthocore.train import trainer

if __name__ == "__main__":
    choice = os.environ.get("ORTHOCORE_SOAK_MALLOC", "")
    if choice:
        if choice == "retain":
            runtime.set_malloc_thresholds()
        elif choice != "glibc":
            sys.exit(f"ORTHOCORE_SOAK_MALLOC: expected retain or glibc, got {choice!r}")
        for module in (runtime, cli, trainer):  # the package's own calls leave the forced choice alone
            module.retain_freed_memory = lambda: choice == "retain"
    sys.exit(cli.main(sys.argv[1:]))
