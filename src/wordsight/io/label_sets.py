"""Label sets: the ``labels`` field of a manifest (multi-label images).

A CSV ``labels`` cell holds several labels separated by ``|`` (``car|person``); an empty cell is the
empty set ("none of the labels"). A JSONL ``labels`` field is a list of strings (``[]``: none). A
label set is a sorted tuple of distinct strings, so that it is hashable (a frozen ``Sample``
holds it) and equal sets compare equal. A manifest holds single labels (``label``) or label sets
(``labels``), never both: a model could not tell which task its rows ask for.
"""
from __future__ import annotations

SEPARATOR = "|"
# Distinct labels of one image (a row with more is refused) and of one model (multi_label.MAX_LABELS).
MAX_LABELS_PER_IMAGE = 256


def parse_label_set(value) -> tuple[str, ...]:
    """The label set of a manifest's ``labels`` field (a ``|``-separated string or a list of
    strings); a one-line ValueError naming what is wrong."""
    if isinstance(value, str):
        items = [v.strip() for v in value.split(SEPARATOR)] if value.strip() else []
        if any(not v for v in items):
            raise ValueError(f"'labels' {value!r} holds an empty label between '{SEPARATOR}' separators")
    elif isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise ValueError("'labels' must be a list of strings")
        items = [v.strip() for v in value]
        if any(not v for v in items):
            raise ValueError("'labels' holds an empty label")
    else:
        raise ValueError(f"'labels' must be a '{SEPARATOR}'-separated string or a list of strings, "
                         f"not {type(value).__name__}")
    if len(set(items)) > MAX_LABELS_PER_IMAGE:
        raise ValueError(f"'labels' holds {len(set(items))} labels; at most {MAX_LABELS_PER_IMAGE} per image")
    return tuple(sorted(set(items)))


def is_label_set(label) -> bool:
    """Whether ``label`` is a label set (a tuple) rather than one label."""
    return isinstance(label, tuple)


def label_cell(label) -> str:
    """A label or label set as one CSV cell: a set joined by ``|``; None as empty."""
    if label is None:
        return ""
    if isinstance(label, (tuple, list)):
        return SEPARATOR.join(str(v) for v in label)
    return str(label)


def check_one_kind(fields, manifest) -> None:
    """A manifest's columns (CSV header or JSONL keys) hold ``label`` or ``labels``, not both."""
    if "label" in fields and "labels" in fields:
        raise ValueError(f"{manifest}: has both a 'label' and a 'labels' column: use 'label' for one class per "
                         "image or 'labels' ('|'-separated) for several, not both")


def check_same_kind(samples, manifest) -> None:
    """The rows of one manifest hold single labels or label sets, not some of each (JSONL rows)."""
    sets = sum(isinstance(s.label, tuple) for s in samples)
    singles = sum(s.label is not None and not isinstance(s.label, tuple) for s in samples)
    if sets and singles:
        raise ValueError(f"{manifest}: {singles} row(s) give a 'label' and {sets} give 'labels': use 'label' for "
                         "one class per image or 'labels' for several, in every row")
