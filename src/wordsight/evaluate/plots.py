"""The one way a report draws a plot: a matplotlib figure (Agg) saved to a PNG, its text drawn as
written. Class names, method names and titles are the user's text: matplotlib would read a ``$``
in them as the start of maths (one ``$`` crashed ``evaluate --report``, two drew garbled maths), so
maths parsing is off for every text the figure creates, tick labels included."""
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
    block ends, then closed; every text in it is literal (no maths, no TeX)."""
    plt = pyplot()
    with plt.rc_context({"text.parse_math": False, "text.usetex": False}):
        fig, axes = plt.subplots(*args, **kwargs)
        try:
            yield fig, axes
            fig.tight_layout()
            fig.savefig(path, dpi=110)
        finally:
            plt.close(fig)
