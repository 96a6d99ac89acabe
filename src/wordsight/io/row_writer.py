"""Rows of named values (a detector's scores) written as JSON, JSON Lines, CSV or Parquet, whole.

The pieces :class:`~wordsight.io.records.RecordWriter` writes predictions with: the target checked
before any work (:func:`~wordsight.io.output_files.check_output_file`), the file written under a
temporary name and renamed when complete (:func:`~wordsight.io.output_files.replaced_atomically`),
and CSV text cells that a spreadsheet would run as formulas written as text
(:func:`~wordsight.io.records.csv_cell`); numbers stay numbers (a negative score is not a formula).
"""
from __future__ import annotations

import csv
import json

from .output_files import check_output_file, replaced_atomically
from .records import FORMATS, csv_cell


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, int, float)):
        return str(value)
    return csv_cell(str(value))


def write_rows(rows: list[dict], path, columns: list[str]) -> None:
    """``rows`` to ``path`` (its suffix picks the format): ``columns`` in this order in CSV and
    Parquet (a row without one leaves it empty / null); JSON and JSON Lines keep each row's keys."""
    path = check_output_file(path, FORMATS)
    suffix = path.suffix.lower()
    with replaced_atomically(path) as tmp:
        if suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows]), tmp)
            return
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
            if suffix == ".csv":
                w = csv.writer(f)
                w.writerow(columns)
                w.writerows([_cell(r.get(c)) for c in columns] for r in rows)
            elif suffix == ".jsonl":
                f.writelines(json.dumps(r) + "\n" for r in rows)
            else:
                json.dump(rows, f, indent=1)
