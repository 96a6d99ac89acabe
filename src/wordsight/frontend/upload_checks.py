"""Uploaded bytes -> in-memory :class:`~wordsight.io.sources.Sample` s, checked against the limits.

Only the header is read here (format, width, height): decoding is the pipeline's job, and an image
that turns out to be corrupt while decoding comes back from it as a per-image failure. The
client's file name is kept for the answer only; it never becomes a path that is opened.

``limits`` is a :class:`wordsight.serve.Limits` or anything with its ``max_upload_bytes``,
``max_pixels``, ``max_side`` and ``max_aspect``.
"""
from __future__ import annotations

import io
import itertools
import warnings
from dataclasses import dataclass

from ..io.sources import Sample
from .input_error import InputError

FORMATS = "JPEG, PNG, WebP, GIF, BMP, TIFF, a video (MP4, WebM, MKV, MOV, AVI) or DICOM"
_request_ids = itertools.count(1)


@dataclass(frozen=True)
class Upload:
    name: str  # the client's file name (its last part), for the answer only
    sample: Sample  # in-memory image bytes under a server-made unique path
    width: int
    height: int


def check_header(name: str, data: bytes, limits) -> tuple[int, int]:
    """(width, height) of an upload, or an :class:`InputError` saying why it is refused."""
    from PIL import Image, UnidentifiedImageError

    from ..io.images import ImageError, check_size

    if len(data) > limits.max_upload_bytes:
        raise InputError(413, "upload_too_large", f"{name}: upload is larger than the limit of "
                         f"{limits.max_upload_bytes:,} bytes per image", name)
    if not data:
        raise InputError(422, "empty_file", f"{name}: empty file (0 bytes)", name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            fmt, turned = img.format, _turned(img)
    except UnidentifiedImageError:
        raise InputError(415, "not_an_image", f"{name}: not a recognised image format (expected {FORMATS})",
                         name) from None
    except Image.DecompressionBombError as e:
        raise InputError(413, "too_many_pixels", f"{name}: {e}", name) from None
    except Exception as e:  # a header so broken that PIL cannot even read the size
        raise InputError(422, "corrupt_image", f"{name}: cannot read the image header: {e}", name) from None
    if w == 0 or h == 0:
        raise InputError(422, "corrupt_image", f"{name}: image has no pixels ({w}x{h})", name)
    if w * h > limits.max_pixels:
        raise InputError(413, "too_many_pixels", f"{name}: {w}x{h} = {w * h:,} pixels exceeds the limit of "
                         f"{limits.max_pixels:,} pixels", name)
    try:
        check_size(w, h, limits.max_pixels, limits.max_side, limits.max_aspect)
    except ImageError as e:
        code = "too_elongated" if "aspect" in str(e) else "too_large_side"
        raise InputError(413, code, f"{name}: {e}", name) from None
    if fmt in ("JPEG", "MPO"):
        _check_scans(name, data, w * h)
    return (h, w) if turned else (w, h)


def _turned(img) -> bool:
    """Whether the EXIF orientation turns the image by 90 degrees (what is shown is h x w)."""
    try:
        return img.getexif().get(0x0112) in (5, 6, 7, 8)
    except Exception:  # an unreadable EXIF block: the decoder ignores it too
        return False


def _check_scans(name: str, data: bytes, pixels: int) -> None:
    from ..io.jpeg_scans import check_scans

    try:
        check_scans(data, pixels)
    except ValueError as e:
        raise InputError(422, "too_many_scans", f"{name}: {e}", name) from None


def upload_samples(files: list[tuple[str | None, bytes]], limits) -> list[Upload]:
    """``(client file name, bytes)`` pairs as uploads whose samples are named
    ``upload-<request>/<index>``, unique across concurrent requests so that a batch holding several
    requests' images keeps them apart."""
    from .upload_media import media_uploads

    rid = next(_request_ids)
    out = []
    for i, (filename, data) in enumerate(files):
        name = display_name(filename, i)
        frames = media_uploads(name, data, f"upload-{rid}/{i}", limits, lambda s, w, h: Upload(name, s, w, h))
        if frames is not None:  # a video or DICOM file: one upload per frame (.upload_media)
            out += frames
            continue
        w, h = check_header(name, data, limits)
        out.append(Upload(name, Sample(f"upload-{rid}/{i}", data=data), w, h))
    return out


def display_name(filename: str | None, index: int) -> str:
    """The last part of the client's file name (at most 200 characters), or ``image <n>``."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name[:200] or f"image {index + 1}"
