"""The one batch callable every engine runs: a dict of arrays in, a dict of arrays out.

    fn = EmbedBatch("efficientnet-lite0")
    out = fn({"path": np.array(["a.jpg", "b.png"])})
    out["status"]     # ["ok", "error: not a recognised image format"]
    out["embedding"]  # (2, 1280) float32, NaN rows where status is not "ok"

The local engine (:func:`wordsight.iter_features`) calls its two halves, ``prepare`` (read, hash,
cache look-up, decode in a thread pool) and ``finish`` (encode, store), on successive chunks so
that decoding overlaps inference. Ray Data calls it per batch in ``map_batches`` (one instance per
actor: the model loads once per actor). Dask and Spark users call it the same way::

    fn = EmbedBatch(model)
    ddf.map_partitions(lambda df: df.assign(embedding=list(fn({"path": df.path.to_numpy()})["embedding"])))

Input keys: ``path`` (required), ``bytes`` (optional image bytes, None to read ``path``),
``label`` (optional); any other column (an id) passes through. Output keys: ``path``, ``label``,
``status``, ``cached`` (bool), ``embedding`` and, for encoders with an ImageNet head, ``logits``.
"""
from __future__ import annotations

import dataclasses
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np
from PIL import Image

from ..._util.caches import register_store
from ...encoders.preprocess import preprocess
from ...io.images import DEFAULT_MAX_PIXELS, ImageError, check_size, decode_image
from ...io.media_ref import MediaRef, media_of
from ...io.sources import Sample
from ..cache import open_cache
from .media_frames import decode_suffix, tiff_fallback
from .multi_view import MultiViewBatch
from .reads import Done, guarded, read_bytes  # noqa: F401 (read_bytes: imported from here by the verbs)
from .tuning import tuned_batch_size

# Images whose shorter side is at most input_size / TINY_FRACTION (28-px Fashion-MNIST, icons) run at
# SMALL_INPUT px instead of the model's full input size; see EmbedBatch.small_config.
TINY_FRACTION = 4
# Measured (benchmarks/tiny_images.py, EfficientNet-Lite0, Fashion-MNIST 1000/1000, linear probe):
# 224 px 0.834, 160 px 0.830, 128 px 0.822, 96 px 0.809, 64 px 0.796 accuracy; 160 px costs half
# the FLOPs of 224 for a loss within the noise of 1000 test images.
SMALL_INPUT = 160


_RUNNERS: dict = register_store("runners", {})
_RUNNERS_LOCK = threading.Lock()


def shared_runner(model, engine: str = "auto", precision: str = "auto", threads: int | None = None):
    """One runner per (model name, engine, precision, threads, cache folder) and process: a new ONNX
    session costs ~0.2 s, which every ``predict`` call and server request would otherwise pay.
    Exported models live in the default cache folder ($WORDSIGHT_CACHE), whatever feature cache a
    run uses: one export per machine. An encoder object (not a name) gets a runner of its own."""
    from ..cache import default_cache_dir
    from .default_precision import effective
    from .runners import make_runner

    precision = effective(precision)
    if not isinstance(model, str):
        return make_runner(model, engine, precision, threads=threads)
    key = (model, engine, precision, threads, str(default_cache_dir()))
    with _RUNNERS_LOCK:
        if key not in _RUNNERS:
            _RUNNERS[key] = make_runner(model, engine, precision, threads=threads)
        return _RUNNERS[key]


def used(model, engine: str = "auto", precision: str = "auto", threads: int | None = None) -> tuple[str, str]:
    """(engine, precision) the features of ``model`` are computed with here (the shared runner's;
    a tile bag's: its inner encoder's)."""
    from ...encoders.tilebag import reader

    runner = shared_runner(reader(model), engine, precision, threads)
    return runner.engine, runner.precision


class EmbedBatch:
    """Engine-agnostic image embedding of one batch; see the module docstring.

    ``engine``: ``auto`` | ``onnx`` | ``torch``; ``precision``: ``fp32`` | ``int8`` (ONNX only,
    gated on agreement with fp32). ``cache``: as in :func:`~wordsight.iter_features` (``None`` the
    default on-disk cache, ``False`` none, a path). The model is loaded on first use, so an
    instance is cheap to create and to ship to a Ray actor.
    """

    def __init__(self, model="efficientnet-lite0", *, engine: str = "auto", precision: str = "auto",
                 batch_size: int | None = None, cache=None, view: Callable | None = None,
                 view_key: str = "", max_pixels: int = DEFAULT_MAX_PIXELS, threads: int | None = None,
                 workers: int = 4, small_input: int | str | None = "auto"):
        self.model, self.engine, self.precision = model, engine, precision
        self.small_input = small_input
        self.batch_size, self.cache, self.view, self.view_key = batch_size, cache, view, view_key
        self.max_pixels, self.threads, self.workers = max_pixels, threads, workers
        self._runner = self._store = None

    # Loaded lazily: a Ray actor builds its copy once, in its own process.
    @property
    def runner(self):
        """The process-wide runner of this model, engine and precision (made on first use)."""
        if self._runner is None:
            self._runner = shared_runner(self.model, self.engine, self.precision, self.threads)
        return self._runner

    @property
    def store(self):
        """The feature cache this batch function reads and writes (opened on first use)."""
        if self._store is None:
            self._store = open_cache(self.cache)
        return self._store

    @property
    def config(self):
        """The encoder's config (preprocessing, dims) as the runner uses it."""
        return self.runner.config

    @property
    def fingerprint(self) -> str:
        """The runner's fingerprint: part of every cache key it writes."""
        return self.runner.fingerprint

    def __getstate__(self):  # ship the recipe, not a loaded model or an open database
        return {**self.__dict__, "_runner": None, "_store": None}

    def small_config(self):
        """The preprocessing used for tiny images (None: tiny images get the normal input size).

        A CNN sees a 28-px image upsampled to 224 px no better than upsampled to ``SMALL_INPUT``
        (measured: benchmarks/tiny_images.py), at many times the cost; models with a fixed input
        size (ViT) always get their own size.
        """
        size = SMALL_INPUT if self.small_input == "auto" else self.small_input
        cfg = self.runner.config
        if not size or not getattr(self.runner, "flexible_size", False) or size >= cfg.input_size:
            return None
        return dataclasses.replace(
            cfg, input_size=int(size), resize_size=round(size * cfg.resize_size / cfg.input_size)
        )

    def _is_tiny(self, data: bytes) -> bool:
        try:  # the header only: no decoding
            w, h = Image.open(io.BytesIO(data)).size
        except Exception:
            return False  # decode() reports the problem
        return min(w, h) <= self.runner.config.input_size // TINY_FRACTION

    def _tiny_of(self, sample: Sample, data: bytes | None) -> bool:
        ref = media_of(sample.path)
        if ref is not None and ref.size is not None:  # a frame: its size came from the header when listed
            return min(ref.size) <= self.runner.config.input_size // TINY_FRACTION
        return data is not None and self._is_tiny(data)

    def _to_input(self, img: Image.Image, small, view=None) -> np.ndarray:
        view = self.view if view is None else view
        if view is not None:
            img = view(img)
        return preprocess(img, small) if small else self.runner.preprocess(img)

    def view_inputs(self, img: Image.Image, small, views, what: str = "cannot decode image") -> list[tuple]:
        """One decoded image -> the model's input through each of ``views`` (PIL -> PIL functions,
        None the plain image), each ``(array, None)`` or ``(None, what: the reason its view failed)``."""
        return [guarded(lambda v=v: self._to_input(img, small, v or _plain), what) for v in views]

    def decoded(self, data: bytes, small=None, window=None) -> Image.Image:
        """Bytes -> the decoded RGB image (JPEGs drafted down towards the input's resize size);
        raises ``ImageError``. ``window``: a 16-bit or float image's (min, max) (None: its
        percentile window, :mod:`wordsight.io.window`)."""
        max_pixels, draft = self.decoding(small)
        try:
            return decode_image(data, draft_size=draft, max_pixels=max_pixels, window=window)
        except ImageError:
            img = tiff_fallback(data, window)  # what PIL cannot read of a TIFF (16-bit RGB, float RGB)
            if img is None:
                raise
            return img

    def decoding(self, small=None) -> tuple[int, int]:
        """What :meth:`decoded` asks of the decoder besides the bytes and window: (the pixel limit,
        the JPEG draft size); models asking alike share a decode (:mod:`.shared_decode`)."""
        return self.max_pixels, (small or self.runner.config).resize_size

    def decode(self, data: bytes, small=None, window=None) -> tuple[np.ndarray | None, str | None]:
        """Bytes -> preprocessed (3, H, W) float32, or the reason it failed (see :meth:`decoded`)."""
        return guarded(lambda: self._to_input(self.decoded(data, small, window), small), "cannot decode image")

    def frame_image(self, sample: Sample, pixels: np.ndarray):
        """A decoded frame (H x W x 3 uint8) -> (PIL image, the small config when it is tiny, else
        None); raises ``ImageError`` past the pixel limit."""
        small = self.small_config()
        small = small if small is not None and self._tiny_of(sample, None) else None
        check_size(pixels.shape[1], pixels.shape[0], self.max_pixels)
        return Image.fromarray(pixels, "RGB"), small

    def frame_input(self, sample: Sample, pixels: np.ndarray) -> tuple[np.ndarray | None, str | None]:
        """A decoded frame (H x W x 3 uint8) -> the model's input, sized like an image of its size."""
        return guarded(lambda: self._to_input(*self.frame_image(sample, pixels)), "cannot prepare the frame")

    def decode_for_model(self, data: bytes, window=None) -> tuple[np.ndarray | None, str | None]:
        """:meth:`decode` with the input size extraction picks for these bytes (tiny images small)."""
        small = self.small_config()
        return self.decode(data, small if small is not None and self._is_tiny(data) else None, window)

    def key_parts(self, sample: Sample, data: bytes | None, small) -> tuple[object, str]:
        """(the small config if this input is tiny, else None; the cache key's view part after the
        view's own key: the small input size, a frame's index and window)."""
        tiny = small if small is not None and self._tiny_of(sample, data) else None
        return tiny, (f"|px{small.input_size}" if tiny else "") + decode_suffix(sample, data)

    def steps(self) -> MultiViewBatch:
        """The chunk steps of this view alone: a :class:`~.multi_view.MultiViewBatch` over one view."""
        return MultiViewBatch(self, [(self.view, self.view_key)])

    def prepare(self, samples: list[Sample], pool: ThreadPoolExecutor | None = None):
        """Read and hash ``samples``, look them up in the cache, start decoding the misses (the
        frames of one video, DICOM or TIFF file together, in one pass): a
        :class:`~.multi_view.ViewsPrepared` for :meth:`finish`."""
        return self.steps().prepare(samples, pool)

    def finish(self, p) -> Done:
        """Encode the decoded misses in batches, store them, and gather the chunk's features."""
        return self.steps().finish(p)[0]

    def encode(self, good: list) -> dict[str, dict[str, np.ndarray]]:
        """``{key: {name: array}}`` of ``(sample, key, input)`` items, run in batches of one input
        size (tiny images run at their own, smaller size)."""
        runner = self.runner
        fresh: dict[str, dict[str, np.ndarray]] = {}
        by_shape: dict[tuple, list] = {}
        for item in good:
            by_shape.setdefault(item[2].shape, []).append(item)
        for shape, group in by_shape.items():
            step = self.batch_size or tuned_batch_size(runner, shape[-1])
            for i in range(0, len(group), step):
                part = group[i : i + step]
                out = runner(np.stack([x for _, _, x in part]))
                for j, (_, k, _) in enumerate(part):
                    fresh[k] = {name: v[j] for name, v in out.items()}
        return fresh

    @staticmethod
    def gather(samples: list, keys: list, hits: dict, fresh: dict, failures: list) -> Done:
        """The chunk's :class:`Done`: ``samples`` whose key (None: unread) was found in ``hits`` or
        ``fresh`` and that did not fail, in input order."""
        found = {**hits, **fresh}
        failed = {f.path for f in failures}
        kept = [(s, found[k]) for s, k in zip(samples, keys) if k in found and s.path not in failed]
        names = list(kept[0][1]) if kept else []
        arrays = {n: np.stack([rec[n] for _, rec in kept]) for n in names}
        from_cache = frozenset(s.path for s, k in zip(samples, keys) if k in hits)
        return Done([s for s, _ in kept], arrays, failures, computed=len(fresh), cached=len(from_cache),
                    from_cache=from_cache)

    def __call__(self, batch: dict) -> dict[str, np.ndarray]:
        paths = [str(p) for p in batch["path"]]
        n = len(paths)
        datas = list(batch["bytes"]) if "bytes" in batch else [None] * n
        labels = list(batch["label"]) if "label" in batch else [None] * n
        media = list(batch["media"]) if "media" in batch else [""] * n
        paths = [MediaRef.from_json(str(m)) if isinstance(m, str) and m else p for p, m in zip(paths, media)]
        samples = [Sample(p, None if _missing(lb) else str(lb), None, None if _missing(d) else bytes(d))
                   for p, lb, d in zip(paths, labels, datas)]
        done = self.finish(self.prepare(samples))
        out = to_columns(samples, done, self.output_dims())
        for key, value in batch.items():  # ids and other columns pass through unchanged
            if key not in out and key not in ("bytes", "media"):
                out[key] = np.asarray(value)
        return out

    def output_dims(self) -> dict[str, int]:
        """Width of every output array: ``embedding`` and, with an ImageNet head, ``logits``."""
        cfg = self.runner.config
        dims = {"embedding": cfg.dim}
        if cfg.has_imagenet_head:
            dims["logits"] = 1000
        return dims


def _plain(img: Image.Image) -> Image.Image:
    return img


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def to_columns(samples: list[Sample], done: Done, dims: dict[str, int]) -> dict[str, np.ndarray]:
    """Row-aligned columns for ``samples`` (failed rows: status ``error: ...`` and NaN arrays)."""
    index = {id(s): i for i, s in enumerate(done.samples)}
    reasons = {f.path: f.reason for f in done.failures}
    n = len(samples)
    out: dict[str, np.ndarray] = {
        "path": np.array([str(s.path) for s in samples], dtype=object),
        "label": np.array([s.label for s in samples], dtype=object),
        "status": np.array(["ok" if id(s) in index else f"error: {reasons.get(s.path, 'failed')}"
                            for s in samples], dtype=object),
        "cached": np.array([s.path in done.from_cache for s in samples], dtype=bool),
    }
    for name, dim in dims.items():
        src = done.arrays.get(name)
        dim = src.shape[1] if src is not None else dim
        col = np.full((n, dim), np.nan, np.float32)
        for row, s in enumerate(samples):
            i = index.get(id(s))
            if i is not None:
                col[row] = src[i]
        out[name] = col
    return out
