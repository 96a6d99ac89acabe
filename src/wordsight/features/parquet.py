"""Write features as Parquet, one row per image, streamed batch by batch.

``write_embeddings(..., engine="ray")`` writes a folder of Parquet shards instead of one file
(see :mod:`wordsight.features.engines.ray_engine`); both have the same columns.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .._util.numerics import softmax
from ..io.output_files import check_output_file, check_output_folder, replaced_atomically
from ..io.safe_files import display_path
from ..io.sources import Sample, open_source
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
    engine: str = ""  # the engine and precision the features were computed with (also in the file's metadata)
    precision: str = ""


def with_provenance(schema: pa.Schema, model: str, engine: str, precision: str) -> pa.Schema:
    """``schema`` with the model, engine and precision of its embeddings in the file's key-value metadata."""
    return schema.with_metadata({"wordsight.model": model, "wordsight.engine": engine,
                                 "wordsight.precision": precision})


def _schema(top_k: int | None) -> pa.Schema:
    fields = [("path", pa.string()), ("label", pa.string()), ("status", pa.string()),
              ("embedding", pa.list_(pa.float32()))]
    if top_k:
        fields += [("imagenet_top5", pa.list_(pa.string())), ("imagenet_top5_prob", pa.list_(pa.float32()))]
    fields += [("frame", pa.int64()), ("time_s", pa.float64())]  # a video / DICOM / TIFF frame's; null for images
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
        _frame_cells(rows, s.path)
        rows["label"].append(_text(s.label))
        rows["status"].append("ok")
        rows["embedding"].append(batch.arrays["embedding"][i])
    if head and batch.samples:
        p = softmax(batch.arrays["logits"])
        top = np.argsort(-p, axis=1)[:, :5]
        rows["imagenet_top5"] += [[names[j] for j in t] for t in top]
        rows["imagenet_top5_prob"] += [p[i, t].astype(np.float32) for i, t in enumerate(top)]
    for f in batch.failures:
        _frame_cells(rows, f.path)
        rows["label"].append(None)
        rows["status"].append(_text(f"error: {f.reason}"))
        rows["embedding"].append(None)
        if head:
            rows["imagenet_top5"].append(None)
            rows["imagenet_top5_prob"].append(None)
    return pa.table(rows, schema=schema)


def _frame_cells(rows: dict, path) -> None:
    """``path`` (the file of a frame), ``frame`` and ``time_s`` of one row."""
    from ..io.media_ref import frame_fields

    file, frame, time_s = frame_fields(path)
    rows["path"].append(_text(file))
    rows["frame"].append(frame)
    rows["time_s"].append(time_s)


def write_embeddings(data, out: str | os.PathLike, model: str = "efficientnet-lite0", **kwargs) -> WriteStats:
    """Embed ``data`` and write ``out`` (path, label, status, embedding, ImageNet top-5).

    ``engine="ray"``: ``out`` is a folder of Parquet shards, resumable (finished shards are
    skipped); other keyword arguments as :func:`~wordsight.iter_features`.
    """
    if kwargs.get("engine") == "ray":
        kwargs.pop("engine")
        return write_shards(data, out, model, **kwargs)
    from .engines.batch import used

    schema, names = schema_for(model)
    engine, precision = used(model, kwargs.get("engine", "auto"), kwargs.get("precision", "auto"))
    schema = with_provenance(schema, model, engine, precision)
    stats = WriteStats(engine=engine, precision=precision)
    with replaced_atomically(check_output_file(out, (".parquet",))) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for batch in iter_features(data, model, **kwargs):
            if batch.samples or batch.failures:
                writer.write_table(batch_table(batch, schema, names))
            stats.ok += len(batch.samples)
            stats.computed += batch.computed
            stats.cached += batch.cached
            stats.failures += batch.failures
    return stats


# ---------------------------------------------------------------- Ray: a folder of resumable shards
def shard_name(index: int, samples: list[Sample], fingerprint: str) -> str:
    h = hashlib.sha256(fingerprint.encode())
    for s in samples:
        h.update(s.path.encode() + b"\0")
    return f"part-{index:05d}-{h.hexdigest()[:10]}.parquet"


def write_shards(data, out, model="efficientnet-lite0", *, shard_size: int = 1000, quiet: bool = False,
                 precision: str = "auto", view_key: str = "", **options):
    """Embed ``data`` on Ray into ``out/part-*.parquet`` (one row per image, the columns of
    :func:`~wordsight.features.parquet.write_embeddings`); finished shards are skipped."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..encoders import get_config
    from .engines.default_precision import pinned
    from .engines.ray_engine import ray_batches
    from .extract import Batch, _progress

    name = model if isinstance(model, str) else model.config.name
    if precision == "auto":  # one precision for every node of a cluster (see ray_engine.ray_batches)
        precision = pinned() or "fp32"
    schema, names = schema_for(name)
    schema = with_provenance(schema, name, f"ray/{options.get('inner_engine', 'auto')}", precision)
    out = check_output_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    source = open_source(data)
    fingerprint = get_config(name).fingerprint + (f"+{precision}" if precision != "fp32" else "") + view_key
    shards = [source.samples[i : i + shard_size] for i in range(0, len(source.samples), shard_size)]
    files = [out / shard_name(i, s, fingerprint) for i, s in enumerate(shards)]
    todo = [i for i, f in enumerate(files) if not f.exists()]
    stats = WriteStats(failures=list(source.problems), shards_skipped=len(shards) - len(todo),
                       engine=f"ray/{options.get('inner_engine', 'auto')}", precision=precision)
    if source.problems:
        listing = Batch([], {}, list(source.problems))
        pq.write_table(batch_table(listing, schema, names), out / "part-listing.parquet")
    pending = [s for i in todo for s in shards[i]]
    bar = _progress(len(pending), quiet, f"{name} on ray")
    buffered = None  # rows received but not yet written, in input order
    current = 0  # position in todo
    try:
        for rows, done in ray_batches(pending, model, precision=precision, view_key=view_key, quiet=quiet, **options):
            bar.update(len(rows))
            stats.ok += len(done.samples)
            stats.computed += done.computed
            stats.cached += done.cached
            stats.failures += done.failures
            table = _in_input_order(rows, done, schema, names)
            buffered = table if buffered is None else pa.concat_tables([buffered, table])
            while current < len(todo) and buffered.num_rows >= len(shards[todo[current]]):
                n = len(shards[todo[current]])
                _write_atomic(buffered.slice(0, n), files[todo[current]])
                buffered = buffered.slice(n)
                stats.shards_written += 1
                current += 1
    finally:
        bar.close()
    return stats


def _in_input_order(rows, done, schema, names):
    """The rows of one batch as a table, in the order of ``rows`` (images and failures mixed)."""
    from .extract import Batch

    table = batch_table(Batch(done.samples, done.arrays, done.failures), schema, names)
    good = {id(s) for s in done.samples}
    n_ok, ok_rank, bad_rank, order = len(done.samples), 0, 0, []
    for s in rows:
        if id(s) in good:
            order.append(ok_rank)
            ok_rank += 1
        else:
            order.append(n_ok + bad_rank)
            bad_rank += 1
    return table.take(order)


def _write_atomic(table, path: Path) -> None:
    import pyarrow.parquet as pq

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
