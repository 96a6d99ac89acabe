"""A listed video, DICOM or multi-page TIFF becomes the rows of its frames (:class:`~.media_ref.MediaRef` paths).

Only headers are read here (container, DICOM header, TIFF page directory); every limit is checked
before a pixel is decoded, and a file that cannot be listed is a :class:`~.sources.Problem` with
the reason, so that the rest of the folder goes on. ``--sample scenes`` is the one choice that
decodes here (the cuts are in the pixels), at 32x32 grey.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .dicom import DICOM_EXTENSIONS
from .images import ImageError, check_size
from .media_ref import MediaRef, media_of
from .tiff import TIFF_EXTENSIONS
from .video import VIDEO_EXTENSIONS

MEDIA_EXTENSIONS = VIDEO_EXTENSIONS | DICOM_EXTENSIONS


def media_kind(path, data: bytes | None = None) -> str | None:
    """``video``, ``dicom`` or ``tiff`` by the file's extension (None for other images); a file named
    without one (``IM0001``, a UID) is DICOM when its bytes (``data``, else the file's first 132) say so."""
    from .signatures import dicom_file, is_dicom, unnamed

    name = Path(str(path)).name
    ext = Path(name).suffix.lower()
    if ext in VIDEO_EXTENSIONS:
        return "video"
    if ext in DICOM_EXTENSIONS:
        return "dicom"
    if ext in TIFF_EXTENSIONS:
        return "tiff"
    if unnamed(name) and (is_dicom(data) if data is not None else dicom_file(path)):
        return "dicom"
    return None


def _video_frames(src, options):
    from . import video

    info = video.probe(src)
    check_size(info.width, info.height)
    if options.sample == "scenes":
        video.planned_frames(info, replace(options, sample="all"))  # the decoding work, bounded first
        frames = video.scene_starts(src, options.max_frames)
    else:
        frames = video.planned_frames(info, options)
    return [(i, i / info.fps) for i in frames], (info.width, info.height)


def _paged(n: int, options, what: str) -> list[int]:
    if options.frame is not None:
        if options.frame >= n:
            raise ImageError(f"--frame {options.frame} does not exist (the file has {n} {what}(s))")
        return [options.frame]
    if n > options.max_pages:
        raise ImageError(f"{n:,} {what}s, more than the limit of {options.max_pages:,} (--max-pages); "
                         "read one with --frame")
    return list(range(n))


def _dicom_frames(src, options):
    from . import dicom

    info = dicom.probe(src)
    check_size(info.width, info.height)
    return [(i, None) for i in _paged(info.frames, options, "frame")], (info.width, info.height)


def _tiff_frames(src, options):
    from . import tiff

    if options.frame is None:
        n, size = tiff.count_pages(src, options.max_pages)
    else:  # one page chosen: counted up to it, not further
        n, size = tiff.count_pages(src, options.frame + 1, refuse=False)
    check_size(*size)
    return [(i, None) for i in _paged(n, options, "page")], size


_READERS = {"video": _video_frames, "dicom": _dicom_frames, "tiff": _tiff_frames}


def expand_sample(sample, options):
    """The samples of ``sample``'s frames, or an ``ImageError`` saying why it cannot be listed.
    A plain image stays itself (with a window when ``options.window`` is set); so does a one-page TIFF."""
    if media_of(sample.path) is not None:
        return [sample]
    kind = media_kind(sample.path, sample.data)
    if kind is None:
        if options.window is None:
            return [sample]
        return [replace(sample, path=MediaRef(sample.path, "image", window=options.window))]
    src = sample.data if sample.data is not None else sample.path
    frames, size = _READERS[kind](src, options)
    if kind == "tiff" and frames == [(0, None)] and options.frame is None:  # one page: an image like others
        return [sample if options.window is None else replace(sample, path=MediaRef(sample.path, "image",
                                                                                    window=options.window))]
    return [replace(sample, path=MediaRef(sample.path, kind, i, t, options.window, size)) for i, t in frames]


def expand_media(samples, options, report):
    """``samples`` with every video, DICOM and multi-page TIFF replaced by its frames; each one that
    cannot be listed goes to ``report(path, reason)`` and is left out."""
    out = []
    for s in samples:
        try:
            out += expand_sample(s, options)
        except ImageError as e:
            report(str(s.path), str(e))
    return out
