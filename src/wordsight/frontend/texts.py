"""Each image's own text, for models that read it (fusion ``paired`` or ``late``; see
:mod:`wordsight.estimator.paired_text`): the check that the model reads texts (``predict --text`` and the
server's ``texts`` field), and the server's field itself.

The field is a JSON list with one entry per uploaded file, in order: a string, or ``null`` / ``""``
for an image without text (the image alone decides for it). Bounded before any work: the field's
size, its JSON depth (a flat list), the count (one per file) and each text's length.
"""
from __future__ import annotations

from dataclasses import replace

from ._json import MAX_FIELD, check_size, load_json
from .input_error import InputError

# Characters per text. MiniLM reads at most 256 word pieces (about 1,000 characters of English):
# a caption, a product title or a report finding fits; 32 images x 2,000 characters is 64 kB.
MAX_PAIRED_TEXT = 2000
CODE = "invalid_texts"


def check_reads_texts(reads_texts: bool, fusion: str, where: str) -> None:
    """Refuse texts for a model that does not read them."""
    if not reads_texts:
        raise InputError(422, "texts_not_used", f"{where}: this model (fusion {fusion!r}) does not read texts; "
                         "only models fitted with fusion 'paired' or 'late' do")


def parse_texts(field: str | None, n_files: int, reads_texts: bool, fusion: str) -> list[str | None] | None:
    """The texts of a request (None when the field is absent), or an :class:`InputError` saying why not."""
    if field is None or not field.strip():
        return None
    check_reads_texts(reads_texts, fusion, "texts")
    check_size(field, "texts", CODE, MAX_FIELD)
    stripped = field.lstrip()
    if not stripped.startswith("[") or stripped[1:].lstrip().startswith("["):
        raise InputError(422, CODE, "texts: expected a flat JSON list with one string (or null) per image")
    texts = load_json(field, "texts", CODE, 1)
    if not all(t is None or isinstance(t, str) for t in texts):
        raise InputError(422, CODE, "texts: expected a JSON list of strings (or null for an image without text)")
    if len(texts) != n_files:
        raise InputError(422, CODE, f"texts: {len(texts)} texts for {n_files} images; give one per image, in "
                         "order (null for an image without text)")
    long = [i for i, t in enumerate(texts) if t is not None and len(t) > MAX_PAIRED_TEXT]
    if long:
        raise InputError(413, "text_too_long", f"texts: text {long[0] + 1} has {len(texts[long[0]]):,} "
                         f"characters; the limit is {MAX_PAIRED_TEXT:,}")
    return [t if t and t.strip() else None for t in texts]


def attach_texts(samples: list, texts: list[str | None] | None) -> list:
    """The samples with their texts attached (unchanged when ``texts`` is None)."""
    return samples if texts is None else [replace(s, text=t) for s, t in zip(samples, texts)]
