"""The one way a report draws a plot: a matplotlib figure (Agg) saved to a PNG, and the user's text
in it (class names, method names) drawn as written. matplotlib reads text between two ``$`` as
maths: ``a$\\b$`` crashed ``evaluate --report`` and ``$x^2$`` drew as a formula. :func:`literal`
escapes every ``$`` (maths parsing cannot be switched off for the whole figure: the log-scale
axes write their own tick labels in maths)."""
from __future__ import annotations

import contextlib
from pathlib import Path


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@contextlib.contextmanager
def figure(path: Path, *args, **kwargs):
    """``(fig, axes)`` of ``plt.subplots(*args, **kwargs)``, laid out and saved to ``path`` when the
    block ends, then closed."""
    plt = pyplot()
    fig, axes = plt.subplots(*args, **kwargs)
    try:
        yield fig, axes
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)


def literal(text) -> str:
    """``text`` as matplotlib draws it literally: every ``$`` escaped (matplotlib shows ``\\$`` as
    ``$`` and starts no maths without an unescaped pair)."""
    return str(text).replace("$", "\\$")
