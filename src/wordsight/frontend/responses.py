"""The output side: how many classes an answer lists, and a record as the server's JSON.

Records themselves are :class:`~wordsight.io.records.Prediction` s, built by
``Classifier.predict_records`` (trained models) or :func:`~wordsight.io.records.predictions` from
zero-shot probabilities, for the CLI and the server alike.
"""
from __future__ import annotations

from .input_error import InputError


def check_top_k(k: int, n_classes: int) -> int:
    """``k`` capped at the number of classes; below 1 is refused."""
    if k < 1:
        raise InputError(422, "invalid_top_k", f"top_k must be >= 1, not {k}")
    return min(k, n_classes)


def result_json(upload, record, k: int | None = None) -> dict:
    """One upload's answer: its name and size, then the record's class and ``k`` best classes (when
    it has classes: not for a description alone) and its description."""
    out = {"file": upload.name, "width": upload.width, "height": upload.height}
    if record.top_k:
        d = record.to_dict()
        out.update(predicted=d["predicted"], top_k=d["top_k"][:k])
    out["description"] = record.description
    return out
