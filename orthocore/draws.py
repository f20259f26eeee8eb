"""Random draws keyed by what they are for: the same draw for the same purpose, however
the work is batched, chunked or shared out.

A randomized defense (TV reconstruction from a random pixel mask, Guo et al. 2018) draws
a fresh transform on every call. An evaluation must be repeatable, and an attack that
averages gradients over draws (EOT, :mod:`orthocore.attacks._loop`) must get the same
draws for an image whichever chunk or restart its row lands in. So each row of a batch
carries a **key**, an int64 made from (attack seed, restart, step, image, draw), and a
row's random numbers are a hash of its key and the position in the row: a counter-based
generator (splitmix64's finaliser, Steele et al. 2014), computed with int64 tensor
arithmetic on any device.

Whoever knows the rows' purposes sets the keys around the model call
(:func:`keyed`); the randomized transform reads them (:func:`current_keys`) and falls
back to its own generator when none are set.

Examples:
    >>> import torch
    >>> keys = row_keys(7, torch.arange(3), step=0)
    >>> a = uniform(keys, (2, 2))
    >>> b = uniform(keys[1:], (2, 2))  # the same rows, batched differently
    >>> torch.equal(a[1:], b)
    True
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor


def _signed(value: int) -> int:
    """A 64-bit constant as the int64 with the same bits."""
    return value - (1 << 64) if value >= 1 << 63 else value


_GOLDEN = _signed(0x9E3779B97F4A7C15)
_MIX_1 = _signed(0xBF58476D1CE4E5B9)
_MIX_2 = _signed(0x94D049BB133111EB)
_KEYS: contextvars.ContextVar = contextvars.ContextVar("orthocore_draw_keys", default=None)

# The step numbers of the draws an evaluation makes itself (an attack's gradient or query
# steps are 0 and above): when it counts fooled images, and when it checks clean ones.
EVALUATION_STEP = -1
CLEAN_STEP = -2


def _shift_right(z: Tensor, bits: int) -> Tensor:
    """Logical right shift of int64 bits (torch's ``>>`` is arithmetic)."""
    return (z >> bits) & ((1 << (64 - bits)) - 1)


def mix(z: Tensor) -> Tensor:
    """splitmix64's finaliser on int64 tensors (multiplication wraps modulo 2^64)."""
    z = (z ^ _shift_right(z, 30)) * _MIX_1
    z = (z ^ _shift_right(z, 27)) * _MIX_2
    return z ^ _shift_right(z, 31)


def combine(*parts: int | Tensor) -> Tensor:
    """One int64 key per row from integers or int64 tensors (broadcast together)."""
    key = torch.zeros((), dtype=torch.int64)
    for part in parts:
        part = torch.as_tensor(part, dtype=torch.int64)
        key = mix(key.to(part.device) + _GOLDEN + part)
    return key


def row_keys(seed: int, images: Tensor, step: int, restart: int = 0, draw: int | Tensor = 0) -> Tensor:
    """The keys of rows that show ``images`` (:math:`(n,)` int64 image indices) at an
    attack's ``step`` (:data:`EVALUATION_STEP` for the evaluation's own count), in its
    ``restart``, for ``draw`` (an EOT sample's number, or an :math:`(n,)` tensor)."""
    return combine(seed, restart, step, images.to(torch.int64), draw)


def uniform(keys: Tensor, shape: Sequence[int], device: torch.device | str | None = None) -> Tensor:
    """:math:`(n, *shape)` float32 numbers in [0, 1), each a hash of its row's key and
    its position in the row: the same key gives the same numbers on any batch."""
    keys = keys.to(device if device is not None else keys.device)
    count = 1
    for size in shape:
        count *= int(size)
    positions = torch.arange(count, dtype=torch.int64, device=keys.device)
    bits = mix(keys.view(-1, 1) * _GOLDEN + positions)  # (n, count)
    return (_shift_right(bits, 40).to(torch.float32) / float(1 << 24)).view(len(keys), *shape)


@contextlib.contextmanager
def keyed(keys: Tensor | Callable[[], Tensor]) -> Iterator[None]:
    """Within the block, a randomized transform draws row ``i`` of its input from
    ``keys[i]`` (:math:`(n,)` int64, one per row of the batch it is given). ``keys`` may
    be a function that makes them: it is called only if a randomized transform asks, so
    a deterministic model costs nothing."""
    token = _KEYS.set(keys)
    try:
        yield
    finally:
        _KEYS.reset(token)


def current_keys(rows: int) -> Tensor | None:
    """The keys set by :func:`keyed` for a batch of ``rows`` rows, or None when none are
    set. Raises ``ValueError`` when the keys set are for another number of rows."""
    keys = _KEYS.get()
    if callable(keys):
        keys = keys()
    if keys is not None and len(keys) != rows:
        raise ValueError(f"draw keys: {len(keys)} keys were set for a batch of {rows} rows")
    return keys
