"""The output side: how many classes an answer lists, and a record as the server's JSON.

Records themselves are :class:`~wordsight.io.records.Prediction` s, built by
``Classifier.predict_records`` (trained models) or :func:`~wordsight.io.records.predictions` from
zero-shot probabilities, for the CLI and the server alike.
"""
from __future__ import annotations

from ..io.media_ref import frame_fields
from .counts import check_count


def check_top_k(k: int, n_classes: int) -> int:
    """``k`` capped at the number of classes; out of its bounds (:mod:`.counts`) is refused."""
    return min(check_count("top_k", k), n_classes)


def result_json(upload, record, k: int | None = None) -> dict:
    """One upload's answer: its name and size, then the record's class and ``k`` best classes (when
    it has classes: not for a description alone) and its description."""
    out = {"file": upload.name, "width": upload.width, "height": upload.height}
    _, frame, time_s = frame_fields(upload.sample.path)
    if frame is not None:  # a video or DICOM upload answers once per frame
        out.update(frame=frame, time_s=time_s)
    if record.top_k:
        d = record.to_dict()
        out.update(predicted=d["predicted"], top_k=d["top_k"][:k])
        if isinstance(d["predicted"], list):  # a multi-label model: its tags with their probabilities
            out["tags"] = [t for t in d["top_k"] if t["class"] in d["predicted"]]
    out["description"] = record.description
    return out
