"""Zero-shot tags: each tag scored on its own against a "none" option, through the zero-shot
pipeline (the same ways into the text space, the same class texts).

A :class:`~.pipeline.ZeroShotPipeline` is built over the tags plus :data:`NONE` (the texts of an
empty scene). For each way, the scaled cosine of the image with each tag's text and with the
"none" text gives the tag's log-odds against "none", ``scale * (cos_tag - cos_none)``: a softmax
over the pair {tag, none}, which no other tag enters (so the tags are independent, as the
multi-label task's outputs are). The ways' log-odds are averaged; the tag's probability is their
sigmoid, and a tag is said present at 0.5 (more likely than "none"). An image with no tag above
0.5 answers "none".
"""
from __future__ import annotations

import numpy as np

from .._util.numerics import sigmoid
from .pipeline import ZeroShotPipeline

DEFAULT_TILES = 2  # zero-shot tags read 2x2 tiles beside the whole image (measured: tag_probabilities)
NONE = "nothing"  # the "none" option's class name (its texts: the templates over an empty scene)
THRESHOLD = 0.5


def _with_none(tags, what: str) -> list:
    if NONE in tags:
        raise ValueError(f"{NONE!r} is the 'none' option of {what}: rename that tag")
    return [*tags, NONE]


def tag_pipeline(tags, **options):
    """The :class:`~.pipeline.ZeroShotPipeline` over ``tags`` and the "none" option."""
    return ZeroShotPipeline(_with_none(tags, "--multilabel"), **options)


def tag_prior(tags, **options):
    """The language prior of a multi-label model: a :class:`TagPrior` over ``tags``."""
    return TagPrior(_with_none(tags, "multi-label zero-shot"), **options)


class TagPrior(ZeroShotPipeline):
    """The zero-shot pipeline over the tags and "none" whose scores are each tag's log-odds
    against "none" (:func:`tag_log_odds`): what a multi-label model's language prior
    (``fusion='prior'``) reads in place of log-probabilities over classes. ``classes_`` are the
    tags alone (the model's labels); its saved ``pipeline.json`` says ``"tags": true``, and
    :meth:`ZeroShotPipeline.load` gives back a TagPrior."""

    tags = True  # scores are per-tag log-odds (a plain ZeroShotPipeline has none)

    def fit(self, X=None, **kw) -> "TagPrior":
        super().fit(X, **kw)
        self.classes_ = np.asarray(self.classes[:-1], dtype=object)
        return self

    def _loaded(self) -> "TagPrior":
        if not self.classes or self.classes[-1] != NONE:
            raise ValueError(f"a tag prior's last class must be {NONE!r}, not {self.classes[-1:]}")
        self.classes_ = np.asarray(self.classes[:-1], dtype=object)
        return self

    def log_proba_reading(self, reading: dict) -> np.ndarray:
        """(N, tags) each tag's log-odds against "none" (its probability is their sigmoid)."""
        return tag_log_odds(self, reading)

    def _write(self, folder):
        return {**super()._write(folder), "tags": True}


def tag_log_odds(pipeline, reading: dict) -> np.ndarray:
    """(N, tags) log-odds of each tag against "none", averaged over the pipeline's ways."""
    total = 0.0
    for way, zs in pipeline.ways_.items():
        z = zs.decision_function(pipeline.vectors(reading, way)) * zs.scale_
        total = total + (z[:, :-1] - z[:, -1:])
    return total / len(pipeline.ways_)


def tile_log_odds(pipeline, X, grid: int, paths) -> np.ndarray:
    """(N, tags) the best tile's log-odds of each tag: the images ``X`` (rows in ``paths`` order)
    cut into ``grid`` x ``grid`` tiles, each tile read as the pipeline reads an image (its view,
    full input size, cached per tile) and scored against "none"; the max over the tiles. A tile
    that fails leaves its image's other tiles."""
    from ..features.views import tile_view
    from .pipeline import read_images

    pos = {p: i for i, p in enumerate(paths)}
    best = np.full((len(paths), len(pipeline.classes) - 1), -np.inf)
    for index in range(grid * grid):
        fn, key = tile_view(pipeline.view_, grid, index)
        fs = read_images(X, pipeline.encoder, pipeline.view_, cache=pipeline.cache, batch_size=pipeline.batch_size,
                         quiet=pipeline.quiet, tile=(fn, key))
        rows = [pos[p] for p in fs.paths]
        if rows:
            best[rows] = np.maximum(best[rows], tag_log_odds(pipeline, pipeline.reading(fs)))
    return best


def tag_probabilities(pipeline, X, tiles: int = 0) -> tuple[np.ndarray, object]:
    """Independent tag probabilities (N, tags) of images ``X`` and their FeatureSet; with ``tiles``
    (a grid of 2..4) each tag's log-odds are the larger of the whole image's and its best tile's
    (:func:`tile_log_odds`): an object that fills one tile counts even where the whole image
    drowns it. On Fashion-MNIST mosaics (docs/benchmarks.md, issue 24) 2x2 tiles raised zero-shot
    mAP from 0.325 to 0.404 (grids; the mean of the two 0.382, tiles alone 0.402, 3x3 0.394):
    :data:`DEFAULT_TILES`."""
    fs = pipeline.read(X)
    if not fs.samples:
        return np.zeros((0, len(pipeline.classes) - 1)), fs
    z = tag_log_odds(pipeline, pipeline.reading(fs))
    if tiles:
        t = tile_log_odds(pipeline, fs.samples, tiles, fs.paths)
        z = np.maximum(z, t)  # a failed tile is -inf: the whole image's
    return sigmoid(z), fs


def tag_records(paths, labels, tags, proba, top_k: int, texts=None) -> list:
    """Prediction records: ``predicted`` the tags at or above :data:`THRESHOLD` (``["none"]``
    when no tag is), ``top_k`` the most probable tags, ``label`` the true label set if given."""
    from ..io.records import Prediction

    k = min(top_k, len(tags))
    texts = texts if texts is not None else [None] * len(proba)
    out = []
    for path, label, p, text in zip(paths, labels, np.asarray(proba, float), texts):
        order = np.argsort(-p, kind="stable")[:k]
        found = [str(t) for t, q in zip(tags, p) if q >= THRESHOLD] or ["none"]
        out.append(Prediction(path, None if label is None else list(label) if isinstance(label, tuple) else label,
                              found, [(str(tags[j]), float(p[j])) for j in order], text))
    return out
