"""Write features as Parquet, one row per image, streamed batch by batch.

``write_embeddings(..., engine="ray")`` writes a folder of Parquet shards instead of one file
(see :mod:`wordsight.features.engines.ray_engine`); both have the same columns.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .._util.numerics import softmax
from ..io.safe_files import display_path
from .extract import iter_features


def _text(v):
    """Parquet strings must be UTF-8: bytes of a file name that are not (kept by Python as lone
    surrogates) are written as ``\\xNN`` escapes instead of failing the whole file."""
    return None if v is None else display_path(str(v))


@dataclass
class WriteStats:
    ok: int = 0
    computed: int = 0
    cached: int = 0
    failures: list = field(default_factory=list)
    shards_written: int = 0
    shards_skipped: int = 0


def _schema(top_k: int | None) -> pa.Schema:
    fields = [("path", pa.string()), ("label", pa.string()), ("status", pa.string()),
              ("embedding", pa.list_(pa.float32()))]
    if top_k:
        fields += [("imagenet_top5", pa.list_(pa.string())), ("imagenet_top5_prob", pa.list_(pa.float32()))]
    return pa.schema(fields)


def schema_for(model: str) -> tuple[pa.Schema, list[str] | None]:
    """The output schema of ``model`` and its ImageNet class names (None without that head)."""
    from ..encoders import get_config
    from ..encoders.imagenet import imagenet_class_names

    head = get_config(model).has_imagenet_head
    return _schema(5 if head else None), (imagenet_class_names() if head else None)


def batch_table(batch, schema: pa.Schema, names: list[str] | None) -> pa.Table:
    """The rows of one :class:`~wordsight.features.Batch`: its images, then its failures."""
    head = names is not None
    rows = {n: [] for n in schema.names}
    for i, s in enumerate(batch.samples):
        rows["path"].append(_text(s.path))
        rows["label"].append(_text(s.label))
        rows["status"].append("ok")
        rows["embedding"].append(batch.arrays["embedding"][i])
    if head and batch.samples:
        p = softmax(batch.arrays["logits"])
        top = np.argsort(-p, axis=1)[:, :5]
        rows["imagenet_top5"] += [[names[j] for j in t] for t in top]
        rows["imagenet_top5_prob"] += [p[i, t].astype(np.float32) for i, t in enumerate(top)]
    for f in batch.failures:
        rows["path"].append(_text(f.path))
        rows["label"].append(None)
        rows["status"].append(_text(f"error: {f.reason}"))
        rows["embedding"].append(None)
        if head:
            rows["imagenet_top5"].append(None)
            rows["imagenet_top5_prob"].append(None)
    return pa.table(rows, schema=schema)


def write_embeddings(data, out: str | os.PathLike, model: str = "efficientnet-lite0", **kwargs) -> WriteStats:
    """Embed ``data`` and write ``out`` (path, label, status, embedding, ImageNet top-5).

    ``engine="ray"``: ``out`` is a folder of Parquet shards, resumable (finished shards are
    skipped); other keyword arguments as :func:`~wordsight.iter_features`.
    """
    if kwargs.get("engine") == "ray":
        from .engines.ray_engine import write_shards

        kwargs.pop("engine")
        return write_shards(data, out, model, **kwargs)
    schema, names = schema_for(model)
    stats = WriteStats()
    tmp = f"{out}.part"
    with pq.ParquetWriter(tmp, schema) as writer:
        for batch in iter_features(data, model, **kwargs):
            if batch.samples or batch.failures:
                writer.write_table(batch_table(batch, schema, names))
            stats.ok += len(batch.samples)
            stats.computed += batch.computed
            stats.cached += batch.cached
            stats.failures += batch.failures
    os.replace(tmp, out)
    return stats
