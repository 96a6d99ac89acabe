"""An uploaded video or DICOM file -> the uploads of its frames, checked from its header before decoding.

Limits (``limits.max_video_seconds``, ``limits.max_video_frames``, and the image limits on the
frame size) are read from the container header (duration, frame rate, size) or the DICOM header
(frames, rows, columns): a 10-hour video is refused with its duration before one frame is decoded.
Frames are sampled as the CLI's default (1 a second); every frame of a multi-frame DICOM is one.
"""
from __future__ import annotations

from .input_error import InputError

DEFAULT_MAX_VIDEO_SECONDS = 600.0
DEFAULT_MAX_VIDEO_FRAMES = 600


def _limit(limits, name: str, default):
    return getattr(limits, name, default)


def _check_size(name: str, w: int, h: int, limits) -> None:
    from ..io.images import ImageError, check_size

    try:
        check_size(w, h, limits.max_pixels, limits.max_side, limits.max_aspect)
    except ImageError as e:
        raise InputError(413, "frame_too_large", f"{name}: {e}", name) from None


def _video_frames(name: str, data: bytes, limits):
    from ..io.media_options import MediaOptions
    from ..io.media_ref import MediaError
    from ..io.video import planned_frames, probe

    try:
        info = probe(data)
    except MediaError as e:
        if str(e).startswith("cannot read the video container"):
            return None  # not a video either: the image checks say what it is not
        raise InputError(422, "unreadable_video", f"{name}: {e}", name) from None
    _check_size(name, info.width, info.height, limits)
    seconds = _limit(limits, "max_video_seconds", DEFAULT_MAX_VIDEO_SECONDS)
    if info.duration_s > seconds:
        raise InputError(413, "video_too_long", f"{name}: {info.duration_s:,.1f} s of video, longer than the limit "
                         f"of {seconds:,.0f} s", name)
    try:
        frames = planned_frames(info, MediaOptions(max_frames=_limit(limits, "max_video_frames",
                                                                   DEFAULT_MAX_VIDEO_FRAMES)))
    except MediaError as e:
        raise InputError(413, "too_many_frames", f"{name}: {e}", name) from None
    return "video", [(i, i / info.fps) for i in frames], (info.width, info.height)


def _dicom_frames(name: str, data: bytes, limits):
    from ..io.dicom import probe
    from ..io.media_ref import MediaError

    try:
        info = probe(data)
    except MediaError as e:
        raise InputError(422, "unreadable_dicom", f"{name}: {e}", name) from None
    _check_size(name, info.width, info.height, limits)
    most = _limit(limits, "max_video_frames", DEFAULT_MAX_VIDEO_FRAMES)
    if info.frames > most:
        raise InputError(413, "too_many_frames", f"{name}: {info.frames:,} frames, more than the limit of {most:,}",
                         name)
    return "dicom", [(i, None) for i in range(info.frames)], (info.width, info.height)


def media_uploads(name: str, data: bytes, path: str, limits, make_upload):
    """``make_upload(sample, width, height)`` for each frame of a video or DICOM upload; None when
    ``data`` is neither (an image, or nothing readable: the image checks answer)."""
    from ..io.media_ref import MediaRef
    from ..io.signatures import kind_of
    from ..io.sources import Sample

    if not data or len(data) > limits.max_upload_bytes:
        return None
    # the kind from the bytes' signature alone: a broken image is an image (the image checks say
    # what is wrong with it), never a video FFmpeg would demux without frames
    kind = kind_of(data[:512])
    found = (_dicom_frames(name, data, limits) if kind == "dicom"
             else _video_frames(name, data, limits) if kind == "video" else None)
    if found is None:
        return None
    kind, frames, (w, h) = found
    return [make_upload(Sample(MediaRef(path, kind, i, t, size=(w, h)), data=data), w, h) for i, t in frames]


def explain_input(sample):
    """What an explanation reads of an upload: a frame's ``Sample`` (the video or DICOM bytes and
    which frame), else the image's bytes."""
    from ..io.media_ref import media_of

    return sample if media_of(sample.path) is not None else sample.data
