"""Progress reports for long work: a tqdm bar on a terminal, plain lines elsewhere.

A log file or a CI console would fill with tqdm's carriage returns and escape codes, so
when the stream is not a terminal :func:`progress` prints one plain line (description,
count, percentage, elapsed time, rate and, while the total is not reached, the time
left at that rate) at most every ``PLAIN_INTERVAL`` seconds, and one at the end. tqdm
shows the same estimate on a terminal.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any

from tqdm import tqdm

PLAIN_INTERVAL = 30.0  # seconds between two plain lines


class PlainProgress:
    """The part of tqdm's interface orthocore uses (iteration, ``update``,
    ``set_postfix``, ``close``, a context manager), printing plain lines to ``stream``."""

    def __init__(self, iterable: Iterable | None, total: int | None, desc: str, unit: str, stream: IO[str],
                 interval: float | None = None) -> None:  # fmt: skip
        self.iterable, self.desc, self.unit, self.stream = iterable, desc, unit, stream
        self.interval = PLAIN_INTERVAL if interval is None else interval
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.count, self.postfix = 0, ""
        self.start = self.last = time.monotonic()
        self.closed = False

    def __iter__(self) -> Iterator:
        for item in self.iterable:
            yield item
            self.update()
        self.close()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.count += n
        if time.monotonic() - self.last >= self.interval:
            self._print()

    def set_postfix(self, values: dict, refresh: bool = True) -> None:
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._print()

    def _print(self) -> None:
        self.last = time.monotonic()
        elapsed = self.last - self.start
        done = f"{self.count}/{self.total}" if self.total else f"{self.count}"
        share = f" ({100 * self.count / self.total:.0f}%)" if self.total else ""
        rate = ""
        if elapsed > 0 and self.count:
            per_second = self.count / elapsed  # as tqdm writes it: the inverse when below one a second
            rate = f", {per_second:.1f} {self.unit}/s" if per_second >= 1 else f", {1 / per_second:.1f} s/{self.unit}"
        left = ""
        if self.total and 0 < self.count < self.total and elapsed > 0:
            left = f", about {_duration(elapsed * (self.total - self.count) / self.count)} left"
        postfix = f", {self.postfix}" if self.postfix else ""
        print(f"{self.desc}: {done} {self.unit}{share}, {elapsed:.0f} s{rate}{left}{postfix}", file=self.stream,
              flush=True)


def _duration(seconds: float) -> str:
    """``"42 s"``, ``"7 min"`` or ``"1 h 05 min"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
             enabled: bool = True, stream: IO[str] | None = None):  # fmt: skip
    """A progress report over ``iterable`` (or ``total`` steps advanced with ``update``):
    tqdm when ``stream`` (default stderr) is a terminal, :class:`PlainProgress` when it is
    not, and a silent tqdm when ``enabled`` is False."""
    stream = stream or sys.stderr
    if not enabled:
        return tqdm(iterable, total=total, disable=True)
    if stream.isatty():
        return tqdm(iterable, total=total, desc=desc, unit=unit, file=stream)
    return PlainProgress(iterable, total, desc, unit, stream)
