"""One prediction record for every path (predict, zeroshot, embed, the server, Ray) and its writers.

A :class:`Prediction` is one input image's result: its path, its label when known, the predicted
class, the top-k classes with probabilities, its description in words, and, for an image that
could not be read, the error instead. :class:`RecordWriter` writes them batch by batch (and
``write_records`` a list) as JSON, JSON Lines, CSV or Parquet (chosen by the file's extension),
to a temporary file renamed at the end, so that a crash never leaves half a file; CSV cells that a
spreadsheet would run as formulas are written as text (:func:`csv_cell`).
"""
from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .label_sets import label_cell
from .media_ref import frame_fields
from .output_files import check_output_file, replaced_atomically

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
        file, frame, time_s = frame_fields(self.path)
        if frame is not None:  # a video / DICOM / TIFF frame: the file, the frame's index and time
            d.update(path=file, frame=frame, time_s=time_s)
        return d

    def to_row(self, k: int, sets: bool = False, unknown: bool = False, frames: bool = False) -> dict:
        """A flat row (CSV, Parquet): ``top1, p1, ..., top{k}, p{k}`` (and the prediction set,
        ``|``-separated, ``unknown``, and the ``frame`` and ``time_s`` of video frames when asked)."""
        row = {"path": self.path, "label": label_cell(self.label), "predicted": label_cell(self.predicted),
               "probability": "" if self.probability is None else f"{self.probability:.6f}"}
        for i in range(k):
            c, p = self.top_k[i] if i < len(self.top_k) else ("", None)
            row[f"top{i + 1}"], row[f"p{i + 1}"] = str(c), "" if p is None else f"{p:.6f}"
        row["description"], row["error"] = self.description or "", self.error or ""
        if sets:
            row["prediction_set"] = "|".join(str(c) for c in self.prediction_set or [])
        if unknown:
            row["unknown"] = "" if self.unknown is None else str(self.unknown).lower()
        if frames:
            file, frame, time_s = frame_fields(self.path)
            row.update(path=file, frame="" if frame is None else str(frame),
                       time_s="" if time_s is None else f"{time_s:.6f}")
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


# OWASP's advice against CSV injection: a cell that a spreadsheet would read as a formula (it starts
# with = + - @, a tab or a carriage return) is written after a single quote, which shows it as text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: str) -> str:
    """``value`` as a CSV cell that no spreadsheet runs: a formula-like start gets a ``'`` first."""
    return "'" + value if value.startswith(FORMULA_START) else value


class RecordWriter:
    """Records written to ``path`` as they come (``.json``, ``.jsonl``, ``.csv``, ``.parquet``), so
    that a run holds one batch of records, not all of them; the file appears whole at the end
    (:func:`~wordsight.io.output_files.replaced_atomically`). ``k``: the top-k columns of flat rows;
    ``sets`` / ``unknown``: the prediction-set and ``unknown`` columns.

    Use as a context manager; an error inside leaves ``path`` as it was.
    """

    def __init__(self, path, k: int, sets: bool = False, unknown: bool = False, frames: bool = False):
        self.path = check_output_file(path, FORMATS)
        self.suffix = self.path.suffix.lower()
        self.k, self.flags = k, {"sets": sets, "unknown": unknown, "frames": frames}
        self.columns = list(Prediction(None).to_row(k, sets, unknown, frames))
        self.n = 0

    def __enter__(self) -> "RecordWriter":
        self._replacing = replaced_atomically(self.path)
        tmp = self._replacing.__enter__()
        if self.suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            self._out = pq.ParquetWriter(tmp, pa.schema([(c, pa.string()) for c in self.columns]))
        else:
            self._out = open(tmp, "w", encoding="utf-8", errors="surrogateescape", newline="")
            if self.suffix == ".csv":
                self._csv = csv.writer(self._out)
                self._csv.writerow(self.columns)
            elif self.suffix == ".json":
                self._out.write("[")
        return self

    def write(self, records) -> None:
        """Append ``records`` (a batch of :class:`Prediction` s)."""
        records = list(records)
        if self.suffix == ".parquet":
            import pyarrow as pa

            rows = [r.to_row(self.k, **self.flags) for r in records]
            self._out.write_table(pa.table({c: pa.array([row[c] for row in rows], pa.string())
                                            for c in self.columns}))
        elif self.suffix == ".csv":
            self._csv.writerows([csv_cell(v) for v in r.to_row(self.k, **self.flags).values()] for r in records)
        else:
            for r in records:
                text = json.dumps(r.to_dict(), ensure_ascii=True)
                if self.suffix == ".json":
                    text = ("\n" if self.n == 0 else ",\n") + text
                self._out.write(text + ("" if self.suffix == ".json" else "\n"))
                self.n += 1

    def __exit__(self, *exc) -> None:
        try:
            if self.suffix == ".json" and exc[0] is None:
                self._out.write("\n]\n")
            self._out.close()
        finally:
            self._replacing.__exit__(*exc)


def write_records(records: list[Prediction], path) -> Path:
    """``.json`` (a list), ``.jsonl`` (one object a line), ``.csv`` or ``.parquet`` (flat rows)."""
    k = max((len(r.top_k) for r in records), default=0)
    with RecordWriter(path, k, sets=any(r.prediction_set is not None for r in records),
                      unknown=any(r.unknown is not None for r in records),
                      frames=any(frame_fields(r.path)[1] is not None for r in records)) as writer:
        writer.write(records)
    return writer.path
