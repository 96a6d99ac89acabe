"""The media options of every verb that reads images (``--fps``, ``--every``, ``--sample``, ``--frame``,
``--window``, ``--max-frames``, ``--max-pages``) and the per-video summary the verbs print."""
from __future__ import annotations

import sys


def add_media_options(p) -> None:
    g = p.add_argument_group("video, DICOM and 16-bit images")
    g.add_argument("--fps", type=float, default=1.0, help="video frames sampled per second (default 1)")
    g.add_argument("--every", type=int, default=None, metavar="N", help="every N-th video frame instead of --fps")
    g.add_argument("--sample", choices=("fps", "every", "scenes", "all"), default=None,
                   help="how video frames are chosen: fps (default), every (with --every), scenes (the first "
                   "frame at each cut), all")
    g.add_argument("--frame", type=int, default=None,
                   help="read only this frame (0-based) of each multi-frame DICOM / multi-page TIFF (default: all)")
    g.add_argument("--window", default=None, metavar="MIN,MAX",
                   help="16-bit, float and DICOM pixel values mapped to 0..255 (default: each image's 0.5th..99.5th "
                   "percentile; DICOM: its own window); a negative MIN needs the = form: --window=-160,240")
    g.add_argument("--max-frames", type=int, default=None, help="sampled frames allowed per video (default 100,000)")
    g.add_argument("--max-pages", type=int, default=None,
                   help="frames / pages read from one DICOM or TIFF file (default 1,000)")


def media_options(args):
    """The :class:`~wordsight.io.media_options.MediaOptions` of ``args`` (defaults where absent)."""
    from ..io.media_options import DEFAULT_MAX_FRAMES, DEFAULT_MAX_PAGES, MediaOptions, parse_window

    every = getattr(args, "every", None)
    sample = getattr(args, "sample", None) or ("every" if every is not None else "fps")
    return MediaOptions(sample=sample, fps=getattr(args, "fps", 1.0), every=1 if every is None else every,
                        frame=getattr(args, "frame", None), window=parse_window(getattr(args, "window", None)),
                        max_frames=getattr(args, "max_frames", None) or DEFAULT_MAX_FRAMES,
                        max_pages=getattr(args, "max_pages", None) or DEFAULT_MAX_PAGES)


def print_timelines(collector, to_stdout: bool) -> None:
    """Each video's summary (segments, shares of time, scores): on stdout when the rows went to a
    file, else on stderr so that stdout stays one row per frame."""
    from ..evaluate.timeline import format_timeline

    for v in collector.timelines():
        print(format_timeline(v), file=sys.stdout if to_stdout else sys.stderr)


def listed(data):
    """``data`` listed once (a :class:`~wordsight.io.sources.Source`, its videos as frames) and
    whether it holds frames (the records then carry ``frame`` and ``time_s``)."""
    from ..io.media_ref import frame_fields
    from ..io.sources import open_source

    src = open_source(data)
    return src, any(frame_fields(s.path)[1] is not None for s in src.samples)


def print_record_timelines(records, to_stdout: bool) -> None:
    """:func:`print_timelines` of a list of records (their ``predicted`` as the label)."""
    from ..evaluate.timeline import TimelineCollector

    collector = TimelineCollector()
    collector.add_records(records)
    print_timelines(collector, to_stdout)
