"""Class lists, one rule for ``--classes``, ``--classes-file``, ``describe-classes`` and the
server's ``classes`` field.

A JSON list of strings, or names one per line (when the text has a newline), or comma-separated;
each name trimmed. An empty name, a repeated name, fewer than two names, more than
:data:`MAX_CLASSES` or a name longer than :data:`MAX_CLASS_NAME` characters is refused with the
reason. The text itself is bounded (:data:`MAX_FIELD` characters) before it is split or parsed.
"""
from __future__ import annotations

from pathlib import Path

from ._json import MAX_FIELD, check_size, load_json
from .input_error import InputError

MAX_CLASSES = 1000
MAX_CLASS_NAME = 200
CODE = "invalid_classes"


def parse_classes(text: str | None, where: str = "classes") -> list[str]:
    """The class names in ``text``; errors start with ``where`` (the option, file or field)."""
    text = (text or "").strip()
    check_size(text, where, CODE, MAX_FIELD)
    if text.startswith(("[", "{")):
        names = load_json(text, where, CODE, 1)
        if not isinstance(names, list):
            raise InputError(422, CODE, f"{where}: a JSON value must be a list of strings, not {_json_type(names)}")
        wrong = next((i for i, n in enumerate(names) if not isinstance(n, str)), None)
        if wrong is not None:
            raise InputError(422, CODE, f"{where}: class name {wrong + 1} of {len(names)} is "
                             f"{_json_type(names[wrong])}, not a string")
    else:
        names = text.splitlines() if "\n" in text else text.split(",")
    names = [n.strip() for n in names]
    empty = [i + 1 for i, n in enumerate(names) if not n]
    if empty and len(names) > 1:
        raise InputError(422, CODE, f"{where}: class name {empty[0]} of {len(names)} is empty "
                         "(separate names by one comma or newline each)")
    names = [n for n in names if n]
    if len(names) < 2:
        shown = names if len(repr(names)) < 200 else f"{repr(names)[:200]}..."
        raise InputError(422, CODE, f"{where}: at least two classes are needed, got {shown}")
    if len(names) > MAX_CLASSES or any(len(n) > MAX_CLASS_NAME for n in names):
        raise InputError(422, CODE, f"{where}: at most {MAX_CLASSES} names of at most {MAX_CLASS_NAME} characters")
    if len(set(names)) < len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise InputError(422, CODE, f"{where}: repeated names: {', '.join(repeated)[:500]}")
    return names


def _json_type(value) -> str:
    """A JSON value's type in JSON's words (a number, an object...)."""
    for kind, name in ((bool, "true/false"), (int, "a number"), (float, "a number"), (str, "a string"),
                       (list, "a list"), (dict, "an object")):
        if isinstance(value, kind):
            return name
    return "null"


def read_classes_file(path) -> list[str]:
    """The class names of a file (.txt one per line, .json a list), by :func:`parse_classes`'s rule;
    the file must be a regular file of at most :data:`MAX_FIELD` bytes."""
    from ..io.safe_files import read_regular_text

    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise FileNotFoundError(f"{path}: classes file not found")
    return parse_classes(read_regular_text(path, MAX_FIELD), str(path))
