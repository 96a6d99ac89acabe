"""A frame of a file (a video frame, a DICOM frame, a TIFF page, or a windowed high-depth image) as a path.

Every layer below keys its rows by ``Sample.path``; a video gives many rows from one file. A
:class:`MediaRef` is a ``str`` (``clip.mp4#frame=12``), unique per frame, that carries the file, the
frame index, its time and the decoding choices (the window of a high-depth image), so that the
feature extraction, the cache key, the records and the Ray engine see one row per frame without a
new argument anywhere. ``to_json`` / ``from_json`` carry it through Ray Data, which keeps strings only.
"""
from __future__ import annotations

import json

from .images import ImageError

KINDS = ("video", "dicom", "tiff", "image")


class MediaRef(str):
    """``file#frame=N``: frame ``frame`` (0-based) of ``file`` at ``time_s`` seconds (None for a still)."""

    file: str
    kind: str
    frame: int
    time_s: float | None
    window: tuple[float, float] | None
    size: tuple[int, int] | None

    def __new__(cls, file: str, kind: str, frame: int = 0, time_s: float | None = None,
                window: tuple[float, float] | None = None, size: tuple[int, int] | None = None):
        if kind not in KINDS:
            raise ValueError(f"unknown media kind {kind!r}")
        text = str(file) if kind == "image" else f"{file}#frame={int(frame)}"
        self = super().__new__(cls, text)
        self.file, self.kind, self.frame = str(file), kind, int(frame)
        self.time_s = None if time_s is None else float(time_s)
        self.window = None if window is None else (float(window[0]), float(window[1]))
        self.size = None if size is None else (int(size[0]), int(size[1]))
        return self

    def __reduce__(self):  # pickled (Ray, process pools) with its fields, not as a plain str
        return MediaRef, (self.file, self.kind, self.frame, self.time_s, self.window, self.size)

    def key_suffix(self) -> str:
        """What the cache key adds to the file's content hash: the frame and the window."""
        win = "" if self.window is None else f"|win={self.window[0]:g},{self.window[1]:g}"
        return ("" if self.kind == "image" else f"|frame={self.frame}") + win

    def to_json(self) -> str:
        return json.dumps({"file": self.file, "kind": self.kind, "frame": self.frame, "time_s": self.time_s,
                           "window": self.window, "size": self.size})

    @classmethod
    def from_json(cls, text: str) -> "MediaRef":
        d = json.loads(text)
        return cls(d["file"], d["kind"], d["frame"], d["time_s"], d["window"], d["size"])


def media_of(path) -> MediaRef | None:
    """The :class:`MediaRef` behind a sample's path, or None for a plain image file."""
    return path if isinstance(path, MediaRef) else None


def frame_fields(path) -> tuple[str, int | None, float | None]:
    """(file, frame, time_s) of a record's path: the file alone for a plain image."""
    ref = media_of(path)
    if ref is None or ref.kind == "image":
        return (ref.file if ref is not None else path), None, None
    return ref.file, ref.frame, ref.time_s


class MediaError(ImageError):
    """A video, DICOM or TIFF that cannot be listed or decoded; ``str`` is the reason (the file is named by the caller)."""


def open_media(source, max_bytes: int):
    """A binary file object for ``source``: in-memory bytes (an upload) or a regular file of at most ``max_bytes``."""
    import io

    from .safe_files import UnsafeFileError, open_regular

    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(source))
    try:
        return open_regular(source, max_bytes)
    except UnsafeFileError as e:
        raise MediaError(str(e).removeprefix(f"{source}: ")) from None
