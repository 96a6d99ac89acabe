"""A deadline for long work on the current thread, checked where the work can stop cleanly.

A server request that timed out has been answered (504), but the model thread would go on with its
work (a LIME explanation: 200 model calls, 12-19 s on two cores) and every other client's request
would wait behind it. Code that loops over batches calls :func:`check` between batches; the caller
that knows the request's time sets :func:`deadline` around the work.
"""
from __future__ import annotations

import contextlib
import threading
import time

_local = threading.local()


class DeadlineExceeded(TimeoutError):
    """The work passed its deadline and stopped; ``str`` says what stopped."""


@contextlib.contextmanager
def deadline(at: float | None):
    """Stop :func:`check` callers on this thread once ``time.monotonic()`` passes ``at`` (None: no deadline)."""
    old = getattr(_local, "at", None)
    _local.at = at
    try:
        yield
    finally:
        _local.at = old


def active() -> bool:
    """Whether this thread has a deadline (callers may then work in smaller steps)."""
    return getattr(_local, "at", None) is not None


def check(what: str = "the work") -> None:
    """Raise :class:`DeadlineExceeded` when this thread's deadline has passed."""
    at = getattr(_local, "at", None)
    if at is not None and time.monotonic() > at:
        raise DeadlineExceeded(f"{what} stopped at the deadline ({time.monotonic() - at:.1f} s past it)")
