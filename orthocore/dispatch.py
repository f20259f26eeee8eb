"""Which kernel backends exist in this installation, and which one an op runs on.

Four backends can implement an op:

* ``reference`` — plain PyTorch, on any device. The test oracle and the fallback.
* ``cpu`` — the C++/OpenMP kernels of ``orthocore._C`` (CPU tensors).
* ``cuda`` — the CUDA C++ kernels of ``orthocore._C`` (CUDA tensors; needs a CUDA build).
* ``triton`` — the Triton kernels of ``orthocore.kernels`` (CUDA tensors, or CPU tensors
  when ``TRITON_INTERPRET=1`` was set before Triton was imported).

The choice is automatic by device (CPU: ``cpu``; CUDA: ``cuda``, then ``triton``; and
``reference`` when nothing compiled is there). ``ORTHOCORE_BACKEND`` or the
:func:`use_backend` context manager forces one; forcing a backend that cannot run an op
on the tensors' device is an error, never a silent fallback.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import importlib
import os
import warnings
from collections.abc import Callable, Iterator

import torch

BACKENDS = ("reference", "cpu", "triton", "cuda")
ENV_VAR = "ORTHOCORE_BACKEND"

_forced: contextvars.ContextVar[str | None] = contextvars.ContextVar("orthocore_backend", default=None)


class BackendUnavailableError(RuntimeError):
    """A backend was asked for that this installation or device cannot run."""


@dataclasses.dataclass(frozen=True)
class BackendStatus:
    """Whether a backend can run here, and why not when it cannot."""

    name: str
    available: bool
    reason: str


@functools.cache
def _compiled_extension() -> tuple[bool, bool, str]:
    """Loads ``orthocore._C`` once: (loaded, built with CUDA, reason if not loaded)."""
    try:
        importlib.import_module("orthocore._C")
    except ImportError as error:
        reason = f"orthocore._C could not be imported ({error}); reinstall with `pip install --no-build-isolation .`"
        warnings.warn(f"orthocore: compiled kernels unavailable, using the reference: {reason}", stacklevel=3)
        return False, False, reason
    return True, bool(torch.ops.orthocore._built_with_cuda()), ""


# Loaded at import, so that torch.ops.orthocore.* exist as soon as orthocore does.
_compiled_extension()


def triton_interpreting() -> bool:
    """True when Triton kernels run on the CPU through Triton's interpreter."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


@functools.cache
def _triton_status() -> tuple[bool, str]:
    try:
        importlib.import_module("triton")
    except ImportError as error:
        return False, f"triton is not installed ({error})"
    if not torch.cuda.is_available() and not triton_interpreting():
        return False, "no CUDA device (set TRITON_INTERPRET=1 before importing triton to run on the CPU)"
    return True, ""


def backends() -> dict[str, BackendStatus]:
    """Reports every backend and whether this installation can run it.

    Returns:
        Mapping from backend name to its :class:`BackendStatus`.

    Examples:
        >>> import orthocore
        >>> orthocore.backends()["reference"].available
        True
    """
    return dict(_status_table())


@functools.cache
def _status_table() -> dict[str, BackendStatus]:
    loaded, with_cuda, reason = _compiled_extension()
    triton_ok, triton_reason = _triton_status()
    if not loaded:
        cuda_reason = reason
    elif not with_cuda:
        cuda_reason = "orthocore._C was built without CUDA (rebuild with ORTHOCORE_BUILD_CUDA=1 and nvcc)"
    elif not torch.cuda.is_available():
        cuda_reason = "no CUDA device is visible"
    else:
        cuda_reason = ""
    return {
        "reference": BackendStatus("reference", True, ""),
        "cpu": BackendStatus("cpu", loaded, reason),
        "triton": BackendStatus("triton", triton_ok, triton_reason),
        "cuda": BackendStatus("cuda", loaded and with_cuda and torch.cuda.is_available(), cuda_reason),
    }


def _check_name(name: str, source: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"{source} must be one of {', '.join(BACKENDS)}; got {name!r}")
    return name


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Forces every orthocore op inside the block onto one backend.

    Args:
        name: one of ``"reference"``, ``"cpu"``, ``"triton"``, ``"cuda"``.

    Examples:
        >>> import torch, orthocore
        >>> with orthocore.use_backend("reference"):
        ...     delta = orthocore.ops.normalized_dot(torch.ones(2, 3), -torch.ones(2, 3))
        >>> [round(value, 4) for value in delta.tolist()]
        [-1.0, -1.0]
    """
    token = _forced.set(_check_name(name, "use_backend(name)"))
    try:
        yield
    finally:
        _forced.reset(token)


def forced_backend() -> str | None:
    """The backend forced by :func:`use_backend` or ``ORTHOCORE_BACKEND``, if any."""
    name = _forced.get()
    if name is not None:
        return name
    env = os.environ.get(ENV_VAR)
    return _check_name(env, ENV_VAR) if env else None


def runs_on(name: str, device: torch.device) -> bool:
    """Whether backend ``name`` can take tensors on ``device`` (if it is available)."""
    if name == "reference":
        return True
    if name == "cpu":
        return device.type == "cpu"
    if name == "cuda":
        return device.type == "cuda"
    return device.type == "cuda" or (device.type == "cpu" and triton_interpreting())


@dataclasses.dataclass(frozen=True)
class Sample:
    """One seeded call of an op, for checking its backends against the reference
    (``orthocore backends --check``, the fuzz suite's coverage check).

    Attributes:
        label: what is run, e.g. ``"jpeg quality 80, 8 x 3x32x32"``.
        run: calls the op (through its public function) and returns the outputs to compare.
        tolerance: the largest absolute difference from the reference that is a match.
    """

    label: str
    run: Callable[[], tuple[torch.Tensor, ...]]
    tolerance: float


# Draws a seeded tensor: draw(*shape, rand=torch.randn) on the sample's device.
Draw = Callable[..., torch.Tensor]

_REGISTRY: dict[str, "OpBackends"] = {}


class OpBackends:
    """The implementations of one op, and the choice among them for a device. Each
    registers itself under its name (:func:`registered`), so the CLI, the tests and the
    benchmarks find every op's backends by name, not by importing a table.

    Args:
        op: the op's name, unique: the registry's key and the name in error messages.
        impls: backend name → implementation; ``"reference"`` is required. All share
            one signature.
        gpu_order: the order in which GPU backends are preferred automatically.
        sample: ``sample(device, draw)`` → a :class:`Sample` call of the op on seeded
            inputs, or None for a table that is checked through another's sample (a
            backward through its forward's).
    """

    def __init__(self, op: str, impls: dict[str, Callable], gpu_order: tuple[str, ...] = ("cuda", "triton"),
                 sample: Callable[[torch.device, Draw], Sample] | None = None):  # fmt: skip
        if "reference" not in impls:
            raise ValueError(f"op {op!r} needs a reference implementation")
        for name in impls:
            _check_name(name, f"backend of op {op!r}")
        if op in _REGISTRY:
            raise ValueError(f"op {op!r} is registered already: every op needs a name of its own")
        self.op = op
        self.impls = impls
        self.gpu_order = gpu_order
        self.sample = sample
        _REGISTRY[op] = self

    def select(self, device: torch.device) -> str:
        """The backend that runs this op on ``device`` now."""
        status = _status_table()
        forced = forced_backend()
        if forced is not None:
            if forced not in self.impls:
                raise BackendUnavailableError(f"{self.op}: no {forced!r} implementation (it has {sorted(self.impls)})")
            if not status[forced].available:
                raise BackendUnavailableError(f"{self.op}: backend {forced!r} is unavailable: {status[forced].reason}")
            if not runs_on(forced, device):
                raise BackendUnavailableError(f"{self.op}: backend {forced!r} cannot run on {device.type} tensors")
            return forced
        order = ("cpu",) if device.type == "cpu" else self.gpu_order
        for name in order:
            if name in self.impls and status[name].available and runs_on(name, device):
                return name
        return "reference"

    def __call__(self, device: torch.device) -> Callable:
        """The implementation that runs this op on ``device`` now."""
        return self.impls[self.select(device)]

    def compiled_for(self, device: torch.device) -> list[str]:
        """This op's compiled backends (not the reference) that can run on ``device`` here."""
        status = _status_table()
        return [name for name in self.impls if name != "reference" and status[name].available and runs_on(name, device)]


def registered() -> dict[str, OpBackends]:
    """Every op's :class:`OpBackends` by op name, in the order the ops were defined.

    Examples:
        >>> sorted(registered())[:3]
        ['attack_step', 'batch_norm_double_backward', 'bilateral']
    """
    importlib.import_module("orthocore.ops")  # every op module registers its table on import
    return dict(_REGISTRY)
