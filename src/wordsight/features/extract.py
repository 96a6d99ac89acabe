"""Streaming, batched, cached image-feature extraction.

Files are read and hashed, looked up in the cache, and only the misses are decoded (in a thread
pool, overlapped with inference on the previous chunk) and run through the encoder in batches.
Memory is bounded by two chunks, not by the dataset. One bad file is a reported failure, never a
crash.
"""
from __future__ import annotations

import os
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
from PIL import Image

from ..encoders import ImageEncoder, load_model
from ..io.images import DEFAULT_MAX_PIXELS, ImageError, decode_image
from ..io.sources import Problem, Sample, open_source
from .cache import FeatureCache, content_hash, feature_key, open_cache

DEFAULT_BATCH_SIZE = 16  # on 2 CPU cores, batches of 8-16 ran faster per image than 64


@dataclass
class Batch:
    """Features of the images of one chunk that succeeded, plus the ones that failed."""

    samples: list[Sample]
    arrays: dict[str, np.ndarray]
    failures: list[Problem]
    computed: int = 0
    cached: int = 0


@dataclass
class FeatureSet:
    """Features of a whole source: ``arrays[name][i]`` belongs to ``samples[i]``."""

    samples: list[Sample]
    arrays: dict[str, np.ndarray]
    failures: list[Problem] = field(default_factory=list)
    model: str = ""
    computed: int = 0
    cached: int = 0

    @property
    def paths(self) -> list[str]:
        return [s.path for s in self.samples]

    @property
    def labels(self) -> list[str | None]:
        return [s.label for s in self.samples]

    @property
    def embeddings(self) -> np.ndarray:
        return self.arrays["embedding"]

    @property
    def probabilities(self) -> np.ndarray | None:
        """Softmax of the ImageNet logits, for encoders with that head."""
        logits = self.arrays.get("logits")
        if logits is None:
            return None
        z = np.exp(logits - logits.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)


def _read(sample: Sample) -> tuple[bytes | None, str | None]:
    if sample.data is not None:
        return sample.data, None
    try:
        with open(sample.path, "rb") as f:
            return f.read(), None
    except IsADirectoryError:
        return None, "is a folder, not a file"
    except FileNotFoundError:
        return None, "dangling link" if os.path.islink(sample.path) else "file not found"
    except OSError as e:
        return None, f"cannot read: {e.strerror or e}"


def _progress(total: int, quiet: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="img", desc=desc, dynamic_ncols=True,
                disable=quiet or not sys.stderr.isatty(), file=sys.stderr)


def iter_features(
    data,
    model: str | ImageEncoder = "efficientnet-lite0",
    *,
    cache: FeatureCache | str | bool | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int = 4,
    view: Callable[[Image.Image], Image.Image] | None = None,
    view_key: str = "",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    quiet: bool = False,
) -> Iterator[Batch]:
    """Yield a :class:`Batch` per chunk of ``data`` (anything :func:`open_source` takes).

    ``view``: an image transform applied after decoding (augmentation, inversion); it must be
    named by ``view_key`` so that its results are cached apart from the plain image's.
    """
    source = open_source(data)
    encoder = load_model(model) if isinstance(model, str) else model
    cfg = encoder.config
    store = open_cache(cache)
    chunk = max(batch_size * 2, 32)
    bar = _progress(len(source.samples) + len(source.problems), quiet, cfg.name)
    if source.problems:
        bar.update(len(source.problems))
        yield Batch([], {}, list(source.problems))

    def decode(item):
        sample, data = item
        try:
            img = decode_image(data, draft_size=cfg.resize_size, max_pixels=max_pixels)
            if view is not None:
                img = view(img)
            return encoder.preprocess(img), None
        except ImageError as e:
            return None, str(e)
        except Exception as e:  # a broken file must never stop the run
            return None, f"cannot decode image: {type(e).__name__}: {e}"

    def prepare(samples: list[Sample]):
        reads = list(pool.map(_read, samples))
        keys, failures, todo = [], [], []
        for s, (data, err) in zip(samples, reads):
            if err:
                failures.append(Problem(s.path, err))
                keys.append(None)
            else:
                keys.append(feature_key(content_hash(data), cfg.fingerprint, view_key))
        hits = store.get_many([k for k in keys if k])
        for s, k, (data, _) in zip(samples, keys, reads):
            if k and k not in hits:
                todo.append((s, k, pool.submit(decode, (s, data))))
        return samples, keys, hits, failures, todo

    def finish(prepared) -> Batch:
        samples, keys, hits, failures, todo = prepared
        fresh: dict[str, dict[str, np.ndarray]] = {}
        ok = [(s, k, f.result()) for s, k, f in todo]
        good = [(s, k, x) for s, k, (x, err) in ok if x is not None]
        failures += [Problem(s.path, err) for s, k, (x, err) in ok if x is None]
        for i in range(0, len(good), batch_size):
            part = good[i : i + batch_size]
            out = encoder.encode_arrays(np.stack([x for _, _, x in part]))
            for j, (_, k, _) in enumerate(part):
                fresh[k] = {name: v[j] for name, v in out.items()}
        store.put_many(fresh)
        found = {**hits, **fresh}
        failed = {p.path for p in failures}
        kept = [(s, found[k]) for s, k in zip(samples, keys) if k in found and s.path not in failed]
        names = list(kept[0][1]) if kept else []
        arrays = {n: np.stack([rec[n] for _, rec in kept]) for n in names}
        bar.update(len(samples))
        return Batch([s for s, _ in kept], arrays, failures, computed=len(fresh),
                     cached=sum(1 for s, k in zip(samples, keys) if k in hits))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque = deque()
        try:
            for i in range(0, len(source.samples), chunk):
                pending.append(prepare(source.samples[i : i + chunk]))
                if len(pending) > 1:  # decode chunk i+1 while chunk i is encoded
                    yield finish(pending.popleft())
            while pending:
                yield finish(pending.popleft())
        finally:
            bar.close()


def extract_features(data, model: str | ImageEncoder = "efficientnet-lite0", **kwargs) -> FeatureSet:
    """All features of ``data`` in memory (embeddings, not decoded images)."""
    samples, parts, failures, computed, cached = [], [], [], 0, 0
    name = model if isinstance(model, str) else model.config.name
    for batch in iter_features(data, model, **kwargs):
        samples += batch.samples
        failures += batch.failures
        computed += batch.computed
        cached += batch.cached
        if batch.samples:
            parts.append(batch.arrays)
    arrays = {n: np.concatenate([p[n] for p in parts]) for n in (parts[0] if parts else {})}
    return FeatureSet(samples, arrays, failures, name, computed, cached)
