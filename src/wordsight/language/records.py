"""Per-image results as records, written as JSON, JSON Lines or CSV (chosen by the extension)."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path


def zeroshot_records(paths, labels, classes, proba, top_k: int = 3) -> list[dict]:
    """One record per image: path, label (if known), predicted class, top-k classes with scores."""
    import numpy as np

    records = []
    k = min(top_k, len(classes))
    for path, label, p in zip(paths, labels, np.asarray(proba)):
        order = np.argsort(-p)[:k]
        rec = {"path": path, "label": label, "predicted": str(classes[order[0]]),
               "top": [{"class": str(classes[j]), "score": round(float(p[j]), 6)} for j in order]}
        records.append(rec)
    return records


def _flat(rec: dict) -> dict:
    row = {k: v for k, v in rec.items() if not isinstance(v, (list, dict))}
    for i, item in enumerate(rec.get("top", []), 1):
        row[f"class_{i}"] = item["class"]
        row[f"score_{i}"] = item["score"]
    return row


def write_records(records: list[dict], path) -> Path:
    """``.json`` (a list), ``.jsonl`` (one object a line) or ``.csv`` (``top`` flattened into
    ``class_1, score_1, ...``); written to a temporary file and renamed, so a crash leaves no
    half file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".jsonl", ".csv"):
        raise ValueError(f"{path}: output must end in .json, .jsonl or .csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:  # non-UTF-8 names as bytes
        if suffix == ".json":
            json.dump(records, f, indent=1, ensure_ascii=False)
        elif suffix == ".jsonl":
            for rec in records:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        else:
            rows = [_flat(r) for r in records]
            fields = list(dict.fromkeys(k for r in rows for k in r))
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    os.replace(tmp, path)
    return path
