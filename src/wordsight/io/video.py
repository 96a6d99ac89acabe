"""Video files through PyAV (FFmpeg): the container header, the frames to sample, streaming decode.

A video is listed from its header only (:func:`probe`: frame rate, duration, frame count, size)
and refused there when its sampled frames exceed the limit; the frames are decoded later, a
chunk at a time (:func:`decode_frames`: seek to the key frame before the first one wanted, or go
on from where the file's previous chunk stopped (:mod:`.video_streams`), decode forward, keep only
the wanted ones), so memory is bounded by the chunk, not the video's length, and a file's sampled
frames are decoded in one forward pass however long its groups of pictures.
A frame's index counts the decoded frames from 0 (for constant-frame-rate video it is its
timestamp times the frame rate); its time is ``index / fps`` seconds from the first frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .media_ref import MediaError, open_media

VIDEO_EXTENSIONS = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}
DEFAULT_MAX_VIDEO_BYTES = 16 << 30
# Scene cuts: the mean absolute difference of two consecutive frames' 32x32 grey thumbnails, as a
# fraction of 255, above this. FFmpeg's scene detector (scdet) scores frames by the same mean absolute
# frame difference and cuts at 10 (percent) by default; PySceneDetect does more but is not in the
# 'media' extra, and this is a few lines on PyAV's own frames.
SCENE_CUT = 0.10


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    frames: int
    duration_s: float
    width: int
    height: int


def _av():
    try:
        import av
    except ImportError:
        raise MediaError("reading video needs PyAV: pip install 'wordsight[media]'") from None
    return av


class _Container:
    """``av.open`` on a checked file object; every FFmpeg error becomes a :class:`MediaError`."""

    def __init__(self, source, max_bytes: int = DEFAULT_MAX_VIDEO_BYTES):
        self.source, self.max_bytes = source, max_bytes

    def __enter__(self):
        av = _av()
        self.f = open_media(self.source, self.max_bytes)
        try:
            self.c = av.open(self.f, "r")
        except (av.FFmpegError, ValueError, OSError) as e:
            self.f.close()
            raise MediaError(f"cannot read the video container: {_why(e)}") from None
        return self.c

    def __exit__(self, *exc):
        self.c.close()
        self.f.close()


def _why(e) -> str:
    return (getattr(e, "strerror", None) or str(e) or type(e).__name__).strip()


def _stream(c):
    if not c.streams.video:
        kinds = sorted({s.type for s in c.streams}) or ["none"]
        raise MediaError(f"no video stream (streams: {', '.join(kinds)})")
    return c.streams.video[0]


def _rate(v) -> float:
    rate = v.average_rate or v.guessed_rate or v.base_rate
    return float(rate) if rate else 0.0


def probe(source) -> VideoInfo:
    """The header's frame rate, frame count, duration and size; nothing is decoded."""
    with _Container(source) as c:
        v = _stream(c)
        fps = _rate(v)
        if v.duration is not None and v.time_base is not None:
            duration = float(v.duration * v.time_base)
        else:
            duration = (c.duration or 0) / 1_000_000
        frames = int(v.frames) or int(round(duration * fps))
        w, h = v.codec_context.width, v.codec_context.height
    if fps <= 0 or frames <= 0:
        raise MediaError("the container header gives no frame rate or no frames")
    return VideoInfo(fps, frames, duration or frames / fps, int(w), int(h))


def planned_frames(info: VideoInfo, options) -> list[int]:
    """Indices of the frames to sample (``fps``, ``every``, ``all``; ``scenes`` decodes: :func:`scene_starts`),
    refused beyond ``options.max_frames`` before any work."""
    if options.sample == "fps":
        n = int(np.floor(info.duration_s * options.fps + 1e-9)) or 1
        what = f"{info.duration_s:,.0f} s at --fps {options.fps:g}"
    elif options.sample == "every":
        n = -(-info.frames // options.every)
        what = f"every {options.every}-th of {info.frames:,} frames"
    else:
        n = info.frames
        what = f"{info.frames:,} frames at {info.fps:g} frames/s"
    if n > options.max_frames:
        verb = "to decode for --sample scenes" if options.sample == "scenes" else "to sample"
        raise MediaError(f"{n:,} frames {verb} ({what}), more than the limit of {options.max_frames:,} "
                         "(--max-frames); sample fewer with --fps or --every")
    if options.sample == "fps":
        idx = np.minimum(np.rint(np.arange(n) * (info.fps / options.fps)), info.frames - 1).astype(int)
        return sorted(set(idx.tolist()))
    if options.sample == "every":
        return list(range(0, info.frames, options.every))
    return list(range(info.frames))


def _index(frame, v, rate: float, counter: int) -> int:
    if frame.pts is None or v.time_base is None:
        return counter
    start = v.start_time or 0
    return int(round(float((frame.pts - start) * v.time_base) * rate))


class Cursor:
    """An open video decoding forward: the index of the last frame it decoded and the longest key
    frame interval seen, so that the next chunk of wanted frames can decode on from there
    (:mod:`.video_streams`) instead of seeking back to a key frame."""

    def __init__(self, source, max_bytes: int = DEFAULT_MAX_VIDEO_BYTES):
        self._ctx = _Container(source, max_bytes)
        self.c = self._ctx.__enter__()
        try:
            self.v = _stream(self.c)
        except MediaError:
            self.close()
            raise
        self.v.thread_type = "AUTO"
        self.rate = _rate(self.v)
        self.last, self.key, self.gop = -1, None, 0
        self.reusable, self._frames = True, None
        self.decoded = 0  # frames decoded by this cursor, in all its chunks

    def reaches(self, first: int) -> bool:
        """Whether decoding on to frame ``first`` costs no more than seeking to it: it lies ahead,
        within the longest key frame interval seen (or the distance from the last key frame)."""
        if self._frames is None or first <= self.last:
            return False
        since_key = self.last - (self.key if self.key is not None else 0) + 1
        return first - self.last <= max(self.gop, since_key)

    def seek(self, first: int) -> None:
        if first > 0 and self.rate > 0 and self.v.time_base is not None:
            self.c.seek(int(first / self.rate / self.v.time_base) + (self.v.start_time or 0), stream=self.v,
                        backward=True)
        elif self._frames is not None:  # decoded already: back to the start
            self.c.seek(0)
        self._frames = enumerate(self.c.decode(self.v))
        self.last, self.key = -1, None

    def frames(self):
        """(index, frame) decoded on from where the cursor stands; at the end of the file it is spent."""
        for counter, frame in self._frames:
            idx = _index(frame, self.v, self.rate, counter)
            if frame.key_frame:
                if self.key is not None:
                    self.gop = max(self.gop, idx - self.key)
                self.key = idx
            self.last = idx
            self.decoded += 1
            yield idx, frame
        self.reusable = False

    def close(self) -> None:
        self.reusable = False
        if self._ctx is not None:
            self._ctx.__exit__(None, None, None)
            self._ctx = None


def decode_frames(source, wanted, max_bytes: int = DEFAULT_MAX_VIDEO_BYTES, stream: bool = True):
    """Yield ``(index, H x W x 3 uint8 or None, error or None)`` for each index of ``wanted`` in
    order, decoding forward from the key frame before the first, or, for a file on disk decoded in
    chunks, on from where the previous chunk stopped (:mod:`.video_streams`; ``stream=False``:
    always seek); a frame the video does not reach (truncated, shorter than its header says) comes
    with the reason."""
    av = _av()
    wanted = sorted(set(int(i) for i in wanted))
    if not wanted:
        return
    from .video_streams import STREAMS, file_key

    key = file_key(source) if stream else None
    cursor = STREAMS.take(key, wanted[0], wanted[-1]) if key is not None else None
    pos, error = 0, None
    try:
        if cursor is None:
            cursor = Cursor(source, max_bytes)
        try:
            if not cursor.reaches(wanted[0]):
                cursor.seek(wanted[0])
            for idx, frame in cursor.frames():
                if idx < wanted[pos]:
                    continue
                pixels = frame.to_ndarray(format="rgb24")
                while pos < len(wanted) and wanted[pos] <= idx:
                    yield wanted[pos], pixels, None
                    pos += 1
                if pos == len(wanted):
                    break
        except (av.FFmpegError, ValueError, OSError) as e:
            cursor.reusable = False
            error = f"cannot decode the video: {_why(e)}"
    finally:
        if key is not None:
            STREAMS.give_back(key, cursor or _Spent(), wanted[-1])
        elif cursor is not None:
            cursor.close()
    for i in wanted[pos:]:
        yield i, None, error or f"the video ends before frame {i} (truncated, or shorter than its header says)"


class _Spent:
    """The place of a cursor that could not be opened (its chunk is no longer busy)."""

    reusable = False

    def close(self) -> None:
        pass


def scene_starts(source, max_frames: int, threshold: float = SCENE_CUT) -> list[int]:
    """The first frame of each scene (frame 0 and every cut), decoding each frame once at 32x32 grey."""
    av = _av()
    starts, prev = [], None
    with _Container(source) as c:
        v = _stream(c)
        v.thread_type = "AUTO"
        rate = _rate(v)
        try:
            for counter, frame in enumerate(c.decode(v)):
                if counter >= max_frames:
                    raise MediaError(f"more than {max_frames:,} frames to decode for --sample scenes "
                                     "(--max-frames)")
                grey = frame.reformat(width=32, height=32, format="gray").to_ndarray().astype(np.float32)
                if prev is None or np.abs(grey - prev).mean() / 255.0 > threshold:
                    starts.append(_index(frame, v, rate, counter))
                prev = grey
        except av.FFmpegError as e:
            if not starts:
                raise MediaError(f"cannot decode the video: {_why(e)}") from None
    return starts
