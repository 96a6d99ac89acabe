"""The ``texts`` field of ``POST /v1/predict``: each image's own text, for models that read it
(fusion ``paired`` or ``late``; see :mod:`wordsight.models.paired`).

A JSON list with one entry per uploaded file, in order: a string, or ``null`` / ``""`` for an image
without text (the image alone decides for it). Bounded before any work: the field's size, its
JSON depth (a flat list), the count (one per file) and each text's length.
"""
from __future__ import annotations

import json
from dataclasses import replace

from .errors import ApiError

# Characters per text. MiniLM reads at most 256 word pieces (about 1,000 characters of English):
# a caption, a product title or a report finding fits; 32 images x 2,000 characters is 64 kB.
MAX_PAIRED_TEXT = 2000
MAX_TEXTS_FIELD = 256 * 1024  # bytes of the whole field (the app's limit for any form field)


def parse_texts(field: str | None, n_files: int, model_reads_texts: bool, fusion: str) -> list[str | None] | None:
    """The texts of a request (None when the field is absent), or an :class:`ApiError` saying why not."""
    if field is None or not field.strip():
        return None
    if not model_reads_texts:
        raise ApiError(422, "texts_not_used", f"texts: this model (fusion {fusion!r}) does not read texts; "
                       "only models fitted with fusion 'paired' or 'late' do")
    if len(field) > MAX_TEXTS_FIELD:
        raise ApiError(413, "invalid_texts", f"texts: {len(field):,} characters, more than the limit of "
                       f"{MAX_TEXTS_FIELD:,}")
    stripped = field.lstrip()
    if not stripped.startswith("[") or stripped[1:].lstrip().startswith("["):
        raise ApiError(422, "invalid_texts", "texts: expected a flat JSON list with one string (or null) per image")
    try:
        texts = json.loads(field)
    except (json.JSONDecodeError, RecursionError) as e:
        raise ApiError(422, "invalid_texts", f"texts: not valid JSON ({getattr(e, 'msg', 'nested too deeply')})") \
            from None
    if not isinstance(texts, list) or not all(t is None or isinstance(t, str) for t in texts):
        raise ApiError(422, "invalid_texts", "texts: expected a JSON list of strings (or null for an image "
                       "without text)")
    if len(texts) != n_files:
        raise ApiError(422, "invalid_texts", f"texts: {len(texts)} texts for {n_files} images; give one per "
                       "image, in order (null for an image without text)")
    long = [i for i, t in enumerate(texts) if t is not None and len(t) > MAX_PAIRED_TEXT]
    if long:
        raise ApiError(413, "text_too_long", f"texts: text {long[0] + 1} has {len(texts[long[0]]):,} characters; "
                       f"the limit is {MAX_PAIRED_TEXT:,}")
    return [t if t and t.strip() else None for t in texts]


def with_texts(samples: list, texts: list[str | None] | None) -> list:
    """The samples with their texts attached (unchanged when ``texts`` is None)."""
    return samples if texts is None else [replace(s, text=t) for s, t in zip(samples, texts)]
