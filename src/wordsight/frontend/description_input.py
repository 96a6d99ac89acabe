"""Class descriptions given with a class list: a JSON file (``--descriptions``,
``describe-classes --from``) or a JSON field (the server's ``descriptions``), read by one rule.

An object ``{class name: description or [descriptions]}``; a description is a string or
``{"text", "weight", "source", "score"}`` as ``wordsight describe-classes`` writes it. The checks
are those of :func:`wordsight.text.descriptions.parse_descriptions_json` (count and length
per class, weights), plus: every key names one of the classes (a folder spelling such as
``T-shirt-top`` names ``T-shirt/top``). Classes without a key get an empty list: the CLI asks an
LLM for them (or refuses with ``--llm none``), the server represents them by their names.
"""
from __future__ import annotations

from pathlib import Path

from ._json import MAX_FIELD, check_depth, check_size
from .input_error import InputError

CODE = "invalid_descriptions"
MAX_DEPTH = 3  # {"class": [{"text": ...}]}


def parse_descriptions(text: str, classes: list[str], where: str = "descriptions",
                       max_chars: int = MAX_FIELD) -> dict[str, list]:
    """``{class: [descriptions]}`` for exactly ``classes``, in order, from JSON ``text`` (a class read
    from a folder, ``T-shirt-top``, matches its key ``T-shirt/top``)."""
    from ..io.datasets import folder_label_index
    from ..text.descriptions import descriptions_for, parse_descriptions_json

    check_size(text, where, CODE, max_chars)
    check_depth(text, where, CODE, MAX_DEPTH)
    try:
        data = parse_descriptions_json(text, where)
    except ValueError as e:
        raise InputError(422, CODE, str(e)) from None
    known = {folder_label_index(data).get(str(c)) for c in classes}
    unknown = [k for k in data if k not in known]
    if unknown:
        raise InputError(422, CODE, f"{where}: not among the classes: {', '.join(map(str, unknown))[:500]}")
    return descriptions_for(data, classes, missing="empty", where=where)


def read_descriptions(path, classes: list[str]) -> dict[str, list]:
    """:func:`parse_descriptions` of a file: a regular file of at most ``MAX_FILE_BYTES``; errors name it."""
    from ..io.safe_files import read_regular_text
    from ..text.descriptions import MAX_FILE_BYTES

    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise FileNotFoundError(f"{path}: descriptions file not found")
    return parse_descriptions(read_regular_text(path, MAX_FILE_BYTES), classes, str(path), MAX_FILE_BYTES)
