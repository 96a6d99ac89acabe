"""Streaming, batched, cached image-feature extraction.

Files are read and hashed, looked up in the cache, and only the misses are decoded (in a thread
pool, overlapped with inference on the previous chunk) and run through the encoder in batches.
Memory is bounded by two chunks, not by the dataset. One bad file is a reported failure, never a
crash.
"""
from __future__ import annotations

import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
from PIL import Image

from ..encoders import ImageEncoder
from ..io.images import DEFAULT_MAX_PIXELS
from ..io.sources import Problem, Sample, open_source
from ..io.video_streams import STREAMS
from .cache import FeatureCache, open_cache

DEFAULT_BATCH_SIZE = 16  # torch on 2 CPU cores: batches of 8-16 ran faster per image than 64
# (``batch_size=None`` lets the engine choose: engines.runners.DEFAULT_BATCH)


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
        """The path of every row, in row order."""
        return [s.path for s in self.samples]

    @property
    def labels(self) -> list[str | None]:
        """The label of every row (None where the source had none), in row order."""
        return [s.label for s in self.samples]

    @property
    def embeddings(self) -> np.ndarray:
        """(N, D); (0, D) when no image could be read."""
        if "embedding" not in self.arrays:
            from ..encoders import get_config

            return np.zeros((0, get_config(self.model).dim if self.model else 0), np.float32)
        return self.arrays["embedding"]

    @property
    def probabilities(self) -> np.ndarray | None:
        """Softmax of the ImageNet logits, for encoders with that head."""
        logits = self.arrays.get("logits")
        if logits is None:
            return None
        from .._util.numerics import softmax

        return softmax(logits)


def _progress(total: int, quiet: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="img", desc=desc, dynamic_ncols=True,
                disable=quiet or not sys.stderr.isatty(), file=sys.stderr)


def iter_features(
    data,
    model: str | ImageEncoder = "efficientnet-lite0",
    *,
    cache: FeatureCache | str | bool | None = None,
    batch_size: int | None = None,
    workers: int = 4,
    view: Callable[[Image.Image], Image.Image] | None = None,
    view_key: str = "",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    quiet: bool = False,
    engine: str = "auto",
    precision: str = "auto",
    small_input: int | str | None = "auto",
    **ray_options,
) -> Iterator[Batch]:
    """Yield a :class:`Batch` per chunk of ``data`` (anything :func:`open_source` takes).

    ``view``: an image transform applied after decoding (augmentation, inversion); it must be
    named by ``view_key`` so that its results are cached apart from the plain image's.

    ``engine``: ``auto`` (ONNX Runtime when installed, else torch), ``onnx``, ``torch``, or
    ``ray`` (the same batch function on a Ray cluster; ``ray_options`` such as ``address``,
    ``concurrency``, ``num_cpus``, ``num_gpus`` go to :func:`~wordsight.features.engines.ray_engine.ray_batches`).
    ``precision='int8'`` (ONNX) is used only if it agrees with fp32, else it is refused.
    ``batch_size``: images per model call; ``None`` picks the engine's measured best.
    ``small_input``: input size for tiny images (shorter side <= a quarter of the model's input)
    on CNNs; ``"auto"`` the measured choice (``engines.batch.SMALL_INPUT``), ``None`` full size.
    All engines give the same features within ``engines.RTOL``/``ATOL`` and share cache entries,
    except int8, whose entries are kept apart.
    """
    from .engines.batch import EmbedBatch

    source = open_source(data)
    name = model if isinstance(model, str) else model.config.name
    bar = _progress(len(source.samples) + len(source.problems), quiet, name)
    if source.problems:
        bar.update(len(source.problems))
        yield Batch([], {}, list(source.problems))
    if engine == "ray":
        from .engines.ray_engine import ray_batches

        try:
            for samples, done in ray_batches(source.samples, model, cache=cache, batch_size=batch_size,
                                             max_pixels=max_pixels, precision=precision, view=view,
                                             view_key=view_key, small_input=small_input, **ray_options):
                bar.update(len(samples))
                yield Batch(done.samples, done.arrays, done.failures, done.computed, done.cached)
        finally:
            bar.close()
        return
    if ray_options:
        raise TypeError(f"unexpected options {sorted(ray_options)} (only engine='ray' takes them)")
    fn = EmbedBatch(model, engine=engine, precision=precision, batch_size=batch_size, cache=open_cache(cache),
                    view=view, view_key=view_key, max_pixels=max_pixels, small_input=small_input)
    chunk = max((batch_size or fn.runner.batch_size) * 2, 32)
    try:
        for done in chunks(fn, source.samples, chunk, workers):
            bar.update(len(done.samples) + len(done.failures))
            yield Batch(done.samples, done.arrays, done.failures, computed=done.computed, cached=done.cached)
    finally:
        bar.close()


def chunks(fn, samples: list, chunk: int, workers: int) -> Iterator:
    """``fn.finish(fn.prepare(part, pool))`` of each ``chunk`` samples in turn, the next chunk read
    and decoded (in a pool of ``workers`` threads) while this one is encoded: two chunks in memory."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque = deque()
        try:
            for i in range(0, len(samples), chunk):
                pending.append(fn.prepare(samples[i : i + chunk], pool))
                if len(pending) > 1:  # decode chunk i+1 while chunk i is encoded
                    yield fn.finish(pending.popleft())
            while pending:
                yield fn.finish(pending.popleft())
        finally:
            STREAMS.close_all()  # the videos' decoders kept open between chunks (io.video_streams)


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

