"""Which models can share one decode of an image.

:meth:`~.batch.EmbedBatch.decoded` depends on the bytes, the window and :meth:`~.batch.EmbedBatch.decoding`:
the pixel limit and the JPEG draft size (its model's resize size, or its small input's). Two
models asking for the same pair decode the same image; two draft sizes give the same image too
when PIL picks the same DCT scale for both (always, for a PNG or a JPEG smaller than twice the
larger request). Otherwise each decodes its own: a shared decode would change its features and
its cache entries.
"""
from __future__ import annotations

import io


def decode_keys(data: bytes, wants: dict) -> dict:
    """``{model: key}`` for ``wants`` ``{model: (max_pixels, draft size)}``: models with equal keys get
    the same decoded image from ``data``. Reads the header only, and only when the wants differ."""
    if len(set(wants.values())) <= 1:
        return dict(wants)
    drafted = {want: (want[0], *_drafted(data, want[1])) for want in set(wants.values())}
    return {m: drafted[want] for m, want in wants.items()}


def _drafted(data: bytes, draft: int) -> tuple:
    """(mode, size) the decoder's JPEG draft to ``draft`` px leaves (what ``io.images.decode_image``
    loads); anything but a JPEG: ``("as-is",)``, whatever ``draft``; a header that does not open:
    ``("unopened",)`` (the decode fails, or reads a TIFF through tifffile, whatever ``draft``)."""
    from PIL import Image

    try:
        img = Image.open(io.BytesIO(data))
        if img.format != "JPEG":
            return ("as-is",)
        img.draft("RGB", (draft, draft))
        return img.mode, img.size
    except Exception:
        return ("unopened",)
