"""JSON from a user: bounded in size and depth before it is parsed."""
from __future__ import annotations

import json

from .input_error import InputError

MAX_FIELD = 256 * 1024  # characters of one text a user sends: a class list, descriptions, images' texts


def json_depth(text: str) -> int:
    """How deeply ``text``'s JSON arrays and objects nest, counted without parsing (brackets inside
    strings do not count), so that a 1,000-deep value is refused before ``json.loads`` recurses."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def check_size(text: str, where: str, code: str, max_chars: int) -> None:
    """Refuse ``text`` longer than ``max_chars`` (413), before any work on it."""
    if len(text) > max_chars:
        raise InputError(413, code, f"{where}: {len(text):,} characters, more than the limit of {max_chars:,}")


def check_depth(text: str, where: str, code: str, max_depth: int) -> None:
    """Refuse JSON nested deeper than ``max_depth`` (422) before it is parsed."""
    if json_depth(text) > max_depth:
        raise InputError(422, code, f"{where}: JSON nested deeper than {max_depth} level{'s' * (max_depth != 1)}")


def load_json(text: str, where: str, code: str, max_depth: int):
    """``text`` parsed, or a 422 saying why not (:func:`check_depth` first)."""
    check_depth(text, where, code, max_depth)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(422, code, f"{where}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") \
            from None
