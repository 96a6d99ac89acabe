"""What every extraction step shares below the batch function: a sample's bytes read (regular files
only, bounded) and hashed, a chunk's result (:class:`Done`), and failures as reasons (:func:`guarded`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ...io.images import DEFAULT_MAX_FILE_BYTES, ImageError
from ...io.media_ref import media_of
from ...io.sources import Sample
from ..cache import content_hash
from .media_frames import media_digest


def read_bytes(sample: Sample) -> tuple[bytes | None, str | None]:
    from ...io.safe_files import UnsafeFileError, read_regular

    if sample.data is not None:
        return sample.data, None
    try:  # regular files only (a FIFO would block, /dev/zero never end), at most DEFAULT_MAX_FILE_BYTES
        return read_regular(sample.path, DEFAULT_MAX_FILE_BYTES), None
    except UnsafeFileError as e:
        return None, str(e).removeprefix(f"{sample.path}: ")


def read_hashed(sample: Sample) -> tuple[bytes | None, str | None, str | None]:
    """(bytes or None for a frame of a video / DICOM / TIFF, content hash, error)."""
    ref = media_of(sample.path)
    if ref is not None and ref.kind != "image":
        digest, err = media_digest(sample)
        return None, digest, err
    data, err = read_bytes(sample)
    return data, None if data is None else content_hash(data), err


@dataclass
class Done:
    """Result of one chunk: features of the samples that succeeded, in input order."""

    samples: list
    arrays: dict
    failures: list
    computed: int
    cached: int
    from_cache: frozenset = frozenset()  # paths whose features came from the cache


def guarded(make: Callable, what: str) -> tuple:
    """``(make(), None)``, or ``(None, the reason)``: an ``ImageError``'s message, any other
    exception as ``what: type: message`` (a broken file must never stop the run)."""
    try:
        return make(), None
    except ImageError as e:
        return None, str(e)
    except Exception as e:
        return None, f"{what}: {type(e).__name__}: {e}"
