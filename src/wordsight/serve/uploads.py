"""A request's uploaded files, read within the limits; the checks and the samples are
:func:`wordsight.frontend.upload_samples`'s."""
from __future__ import annotations

from fastapi import UploadFile

from ..frontend import InputError, Upload, upload_samples
from .settings import Limits


async def read_uploads(files: list[UploadFile], limits: Limits) -> list[Upload]:
    """The uploads of one request: one to ``limits.max_images`` files, each read to one byte past
    ``limits.max_upload_bytes`` (so that a larger one is refused, not cut)."""
    if not files:
        raise InputError(422, "no_images", "no image uploaded: send one or more files in the 'files' field")
    if len(files) > limits.max_images:
        raise InputError(413, "too_many_images", f"{len(files)} images in one request; the limit is "
                         f"{limits.max_images}")
    return upload_samples([(f.filename, await f.read(limits.max_upload_bytes + 1)) for f in files], limits)
