"""One prediction record for every path (predict, zeroshot, embed, the server, Ray) and its writers.

A :class:`Prediction` is one input image's result: its path, its label when known, the predicted
class, the top-k classes with probabilities, its description in words, and, for an image that
could not be read, the error instead. ``write_records`` writes a list of them as JSON, JSON
Lines, CSV or Parquet (chosen by the file's extension), to a temporary file renamed at the end,
so that a crash never leaves half a file.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

FORMATS = (".json", ".jsonl", ".csv", ".parquet")


def _py(v):
    return v.item() if isinstance(v, np.generic) else v


@dataclass
class Prediction:
    """One image's result; ``top_k`` is ``[(class, probability), ...]``, best first."""

    path: str | None
    label: object = None
    predicted: object = None
    top_k: list = field(default_factory=list)
    description: str | None = None
    error: str | None = None
    prediction_set: list | None = None  # the conformal set at a coverage (predict --coverage)
    unknown: bool | None = None  # none of the classes, at a reject rate (predict --reject-rate)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def probability(self) -> float | None:
        return self.top_k[0][1] if self.top_k else None

    def to_dict(self) -> dict:
        """JSON-able: ``top_k`` as ``[{"class", "probability"}, ...]``."""
        d = asdict(self)
        d["top_k"] = [{"class": _py(c), "probability": float(p)} for c, p in self.top_k]
        d["label"], d["predicted"] = _py(self.label), _py(self.predicted)
        for optional in ("prediction_set", "unknown"):  # only when asked for: other records stay as they were
            if d[optional] is None:
                del d[optional]
        if self.prediction_set is not None:
            d["prediction_set"] = [_py(c) for c in self.prediction_set]
        return d

    def to_row(self, k: int, sets: bool = False, unknown: bool = False) -> dict:
        """A flat row (CSV, Parquet): ``top1, p1, ..., top{k}, p{k}`` (and the prediction set,
        ``|``-separated, and ``unknown`` when asked)."""
        row = {"path": self.path, "label": "" if self.label is None else str(self.label),
               "predicted": "" if self.predicted is None else str(self.predicted),
               "probability": "" if self.probability is None else f"{self.probability:.6f}"}
        for i in range(k):
            c, p = self.top_k[i] if i < len(self.top_k) else ("", None)
            row[f"top{i + 1}"], row[f"p{i + 1}"] = str(c), "" if p is None else f"{p:.6f}"
        row["description"], row["error"] = self.description or "", self.error or ""
        if sets:
            row["prediction_set"] = "|".join(str(c) for c in self.prediction_set or [])
        if unknown:
            row["unknown"] = "" if self.unknown is None else str(self.unknown).lower()
        return row


def predictions(paths, labels, classes, proba: np.ndarray, top_k: int = 5, descriptions=None) -> list[Prediction]:
    """Records from a probability matrix (rows of NaN are images that failed: no record)."""
    classes = list(classes)
    k = min(top_k, len(classes))
    descriptions = descriptions if descriptions is not None else [None] * len(proba)
    out = []
    for path, label, p, text in zip(paths, labels, np.asarray(proba), descriptions):
        order = np.argsort(-p, kind="stable")[:k]
        out.append(
            Prediction(path, label, _py(classes[order[0]]), [(_py(classes[j]), float(p[j])) for j in order], text)
        )
    return out


def write_records(records: list[Prediction], path) -> Path:
    """``.json`` (a list), ``.jsonl`` (one object a line), ``.csv`` or ``.parquet`` (flat rows)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: output must end in {', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    k = max((len(r.top_k) for r in records), default=0)
    flags = {"sets": any(r.prediction_set is not None for r in records),
             "unknown": any(r.unknown is not None for r in records)}
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = [r.to_row(k, **flags) for r in records]
        cols = list(rows[0]) if rows else ["path", "predicted"]
        pq.write_table(pa.table({c: [row[c] for row in rows] for c in cols}), tmp)
    else:
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
            if suffix == ".json":
                json.dump([r.to_dict() for r in records], f, indent=1, ensure_ascii=True)
            elif suffix == ".jsonl":
                for r in records:
                    f.write(json.dumps(r.to_dict(), ensure_ascii=True) + "\n")
            else:
                rows = [r.to_row(k, **flags) for r in records]
                writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["path", "predicted"])
                writer.writeheader()
                writer.writerows(rows)
    os.replace(tmp, path)
    return path
