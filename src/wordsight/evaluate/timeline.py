"""A video's rows as a timeline: segments of consecutive frames with the same label, the labels'
shares of time and, for a detector, the score over time.

A sampled frame stands for the time until the next sampled frame (the last one for the median
step), so a segment runs from its first frame's time to the next segment's first frame's time,
and the shares add up to 1 over the sampled span.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..io.media_ref import frame_fields


@dataclass(frozen=True)
class Segment:
    label: str
    start_s: float
    end_s: float
    first_frame: int
    last_frame: int
    frames: int


@dataclass
class VideoTimeline:
    """One video's sampled frames: ``times`` (s), ``frames``, ``labels``, ``scores`` (None without a detector)."""

    file: str
    frames: list = field(default_factory=list)
    times: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    scores: list | None = None

    def step(self) -> float:
        """The sampling step: the median gap between sampled frames (0 for one frame)."""
        return float(np.median(np.diff(self.times))) if len(self.times) > 1 else 0.0

    def ends(self) -> list[float]:
        """Each frame's end: the next frame's time, the last one's plus :meth:`step`."""
        return list(self.times[1:]) + [self.times[-1] + self.step()] if self.times else []

    def segments(self) -> list[Segment]:
        out, start = [], 0
        ends = self.ends()
        for i in range(1, len(self.labels) + 1):
            if i == len(self.labels) or self.labels[i] != self.labels[start]:
                out.append(Segment(str(self.labels[start]), self.times[start], ends[i - 1], self.frames[start],
                                   self.frames[i - 1], i - start))
                start = i
        return out

    def shares(self) -> dict[str, float]:
        """Each label's share of the sampled time, largest first."""
        total: dict[str, float] = {}
        for seg in self.segments():
            total[seg.label] = total.get(seg.label, 0.0) + seg.end_s - seg.start_s
        span = sum(total.values())
        if span <= 0:  # one frame: its label has all of it
            return {k: 1.0 for k in total}
        return dict(sorted(((k, v / span) for k, v in total.items()), key=lambda kv: -kv[1]))


class TimelineCollector:
    """Collects the rows of videos as they stream past (records in chunks), by file, in order."""

    def __init__(self):
        self.videos: dict[str, VideoTimeline] = {}

    def add(self, path, label, score: float | None = None) -> None:
        file, frame, time_s = frame_fields(path)
        if frame is None or time_s is None:  # an image, a DICOM frame or a TIFF page: no time
            return
        v = self.videos.setdefault(file, VideoTimeline(file, scores=None if score is None else []))
        v.frames.append(frame)
        v.times.append(time_s)
        v.labels.append(label)
        if score is not None and v.scores is not None:
            v.scores.append(float(score))

    def add_records(self, records) -> None:
        for r in records:
            if r.ok:
                self.add(r.path, r.predicted)

    def timelines(self) -> list[VideoTimeline]:
        out = []
        for v in self.videos.values():
            order = np.argsort(v.frames, kind="stable")
            out.append(VideoTimeline(v.file, [v.frames[i] for i in order], [v.times[i] for i in order],
                                     [v.labels[i] for i in order],
                                     None if v.scores is None else [v.scores[i] for i in order]))
        return out


def format_timeline(v: VideoTimeline) -> str:
    """The per-video summary the CLI prints."""
    lines = [f"{v.file}: {len(v.frames)} frame(s) sampled over {v.ends()[-1] if v.times else 0:.2f} s"]
    for seg in v.segments():
        lines.append(f"  {seg.start_s:8.2f} s - {seg.end_s:8.2f} s  {seg.label}  (frames {seg.first_frame}-"
                     f"{seg.last_frame}, {seg.frames} sampled)")
    lines.append("  share of time: " + ", ".join(f"{k} {100 * s:.1f}%" for k, s in v.shares().items()))
    if v.scores:
        s = np.asarray(v.scores)
        worst = int(np.argmin(s))
        lines.append(f"  score over time: min {s.min():.4f} at {v.times[worst]:.2f} s, median {np.median(s):.4f}, "
                     f"max {s.max():.4f} (higher = more normal)")
        lines.append("  " + " ".join(f"{t:.1f}s:{x:.3f}" for t, x in zip(v.times, s)))
    return "\n".join(lines)
