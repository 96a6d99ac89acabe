"""The frames of videos, DICOM files and multi-page TIFFs in a batch: their cache identity and their decoding.

A frame's cache key is the image's (:func:`~..cache.feature_key`) with the frame index and the
window added to the view (:meth:`~wordsight.io.media_ref.MediaRef.key_suffix`): (file content,
frame, window, model, preprocessing, view). A file's content hash is streamed in 1 MiB blocks and
kept per (device, inode, size, mtime) in this process, so a video's chunks hash it once. The frames
of one file in a chunk are decoded by one task, in one pass (:func:`decode_group`).
"""
from __future__ import annotations

import hashlib
import os
import threading

import numpy as np

from ...io.images import ImageError
from ...io.media_ref import MediaError, MediaRef, open_media
from ...io.video import DEFAULT_MAX_VIDEO_BYTES

_DIGESTS: dict = {}
_DIGESTS_LOCK = threading.Lock()
_MAX_DIGESTS = 4096


def media_digest(sample) -> tuple[str | None, str | None]:
    """(sha256 of the file's bytes, None) or (None, the reason it cannot be read)."""
    if sample.data is not None:
        return hashlib.sha256(sample.data).hexdigest(), None
    file = sample.path.file
    try:
        st = os.stat(file)
    except OSError as e:
        return None, f"cannot read: {e.strerror or e}"
    stamp = (file, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    with _DIGESTS_LOCK:
        if stamp in _DIGESTS:
            return _DIGESTS[stamp], None
    h = hashlib.sha256()
    try:
        with open_media(file, DEFAULT_MAX_VIDEO_BYTES) as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except MediaError as e:
        return None, str(e)
    with _DIGESTS_LOCK:
        if len(_DIGESTS) >= _MAX_DIGESTS:
            _DIGESTS.clear()
        _DIGESTS[stamp] = h.hexdigest()
    return _DIGESTS[stamp], None


def _pixels_of(ref: MediaRef, src, frames: list[int]):
    """(frame, H x W x 3 uint8 or None, error or None) for ``frames`` of one file."""
    if ref.kind == "video":
        from ...io.video import decode_frames

        yield from decode_frames(src, frames)
        return
    from ...io.dicom import decode_frame
    from ...io.tiff import decode_page

    read = decode_frame if ref.kind == "dicom" else decode_page
    for i in frames:
        try:
            yield i, read(src, i, ref.window), None
        except ImageError as e:
            yield i, None, str(e)


def decode_group(samples, prepare) -> dict[int, tuple]:
    """``{frame: (preprocessed array or None, error or None)}`` for ``samples``, all frames of one
    file; ``prepare(sample, H x W x 3 uint8)`` makes the model's input."""
    ref = samples[0].path
    src = samples[0].data if samples[0].data is not None else ref.file
    by_frame = {s.path.frame: s for s in samples}
    out: dict[int, tuple] = {}
    try:
        for i, pixels, err in _pixels_of(ref, src, sorted(by_frame)):
            out[i] = (None, err) if pixels is None else prepare(by_frame[i], np.ascontiguousarray(pixels))
    except ImageError as e:  # the file itself could not be opened this time
        out.update({i: (None, str(e)) for i in by_frame if i not in out})
    except Exception as e:  # a broken file must never stop the run
        out.update({i: (None, f"cannot decode: {type(e).__name__}: {e}") for i in by_frame if i not in out})
    return out


class Pick:
    """One frame's result out of a group's (future) result: what ``EmbedBatch.finish`` waits on."""

    def __init__(self, group, frame: int):
        self.group, self.frame = group, frame

    def result(self):
        out = self.group.result() if hasattr(self.group, "result") else self.group
        return out.get(self.frame, (None, "frame not decoded"))


def decode_suffix(sample, data: bytes | None) -> str:
    """The cache key's decoding part: a frame's index and window; ``|win=auto`` for a 16-bit or float
    image read through the default percentile window (features made by an older rule never match)."""
    from ...io.media_ref import media_of

    ref = media_of(sample.path)
    if ref is not None:
        return ref.key_suffix()
    return "|win=auto" if data is not None and _high_depth(data) else ""


def _high_depth(data: bytes) -> bool:
    import io

    from PIL import Image

    try:
        mode = Image.open(io.BytesIO(data)).mode
    except Exception:
        return data[:4] in (b"II*\x00", b"MM\x00*")  # a TIFF PIL cannot read: tifffile windows it
    return mode in ("I", "F") or mode.startswith("I;")


def tiff_fallback(data: bytes, window):
    """The first page of a TIFF that PIL could not decode, through tifffile (None: not a TIFF)."""
    from PIL import Image

    if data[:4] not in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return None
    from ...io.tiff import decode_page

    return Image.fromarray(decode_page(data, 0, window), "RGB")
