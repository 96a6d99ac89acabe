"""How frames are chosen and high-depth pixels scaled: ``--fps``, ``--every``, ``--sample``, ``--frame``, ``--window``.

The options act when a source is listed (:func:`wordsight.io.sources.open_source`): a video becomes
the rows of its sampled frames there, so every verb, the cache and the Ray engine see the same rows.
The CLI sets them once per run with :func:`use_media_options`; the Python API passes them to
``open_source(data, media=...)`` or uses the same context manager.
"""
from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass

SAMPLINGS = ("fps", "every", "scenes", "all")
# Sampled frames per video file: a 10-hour video at --fps 30 (1,080,000 frames) is refused when listed,
# before any decoding, with the number. Raise it with --max-frames.
DEFAULT_MAX_FRAMES = 100_000
# Pages of one multi-page TIFF and frames of one DICOM file read as rows.
DEFAULT_MAX_PAGES = 1_000


@dataclass(frozen=True)
class MediaOptions:
    """``sample``: ``fps`` (``fps`` frames a second, default 1), ``every`` (every ``every``-th frame),
    ``scenes`` (the first frame of each scene), ``all``. ``frame``: one frame of each multi-frame
    DICOM / multi-page TIFF (None: all of them). ``window``: (min, max) mapped to 0..255 for 16-bit
    and float images (None: the 0.5th..99.5th percentile of each image)."""

    sample: str = "fps"
    fps: float = 1.0
    every: int = 1
    frame: int | None = None
    window: tuple[float, float] | None = None
    max_frames: int = DEFAULT_MAX_FRAMES
    max_pages: int = DEFAULT_MAX_PAGES

    def __post_init__(self):
        if self.sample not in SAMPLINGS:
            raise ValueError(f"--sample must be one of {', '.join(SAMPLINGS)}, not {self.sample!r}")
        if not self.fps > 0:
            raise ValueError(f"--fps must be above 0, not {self.fps:g}")
        if self.every < 1:
            raise ValueError(f"--every must be at least 1, not {self.every}")
        if self.frame is not None and self.frame < 0:
            raise ValueError(f"--frame must be 0 or more, not {self.frame}")
        if self.max_frames < 1 or self.max_pages < 1:
            raise ValueError("--max-frames must be at least 1")
        if self.window is not None and not self.window[1] > self.window[0]:
            raise ValueError(f"--window min,max needs min < max, not {self.window[0]:g},{self.window[1]:g}")


def parse_window(text: str | None) -> tuple[float, float] | None:
    """``"min,max"`` -> (min, max); None or ``"auto"`` -> None (the percentile window)."""
    if text is None or text.strip().lower() == "auto":
        return None
    parts = text.split(",")
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"--window takes min,max (two numbers), not {text!r}") from None
    if not hi > lo:
        raise ValueError(f"--window min,max needs min < max, not {text!r}")
    return lo, hi


_CURRENT: contextvars.ContextVar[MediaOptions] = contextvars.ContextVar("media_options", default=MediaOptions())


def current_options() -> MediaOptions:
    """The options sources are listed with now (the defaults unless :func:`use_media_options` set others)."""
    return _CURRENT.get()


@contextlib.contextmanager
def use_media_options(options: MediaOptions):
    """List every source inside the block with ``options``."""
    token = _CURRENT.set(options)
    try:
        yield options
    finally:
        _CURRENT.reset(token)
