"""Zero-shot tags: each tag scored on its own against a "none" option, through the zero-shot
pipeline (the same ways into the text space, the same class texts).

A :class:`TagPrior` (a :class:`~.pipeline.ZeroShotPipeline`) is built over the tags plus
:data:`NONE` (the texts of an empty scene). For each way, the scaled cosine of the image with each
tag's text and with the "none" text gives the tag's log-odds against "none", ``scale * (cos_tag -
cos_none)``: a softmax over the pair {tag, none}, which no other tag enters (so the tags are
independent, as the multi-label task's outputs are). The ways' log-odds are averaged.

Where a tag is said present: the raw log-odds are not calibrated for that (a real photo is never
an empty scene, so every tag beat "none" on scikit-image's photos and on mosaics 8 of 10 tags did).
Each tag's log-odds are shifted by its :func:`reference_offsets`: the :data:`REFERENCE_QUANTILE`
quantile of the tag's log-odds over the 1,000 things ImageNet names, read as images (the concept
bank's vectors, which are what the ConSE way makes of an image sure of one ImageNet class and what
the linear way's map was fitted to). A tag is then present (probability >= 0.5) where the image
is more like it than 90% of those things are: a tag may cover up to a tenth of them (dogs, the
largest group of one kind, are 12%). The shift is one constant per tag, so the ranking of images
for a tag, and its average precision, are unchanged. Joint and caption encoders read no concept
bank: no shift there.
"""
from __future__ import annotations

import numpy as np

from .._util.numerics import sigmoid
from .pipeline import SAVED_KINDS, ZeroShotPipeline

DEFAULT_TILES = 2  # zero-shot tags read 2x2 tiles beside the whole image (measured: tag_probabilities)
NONE = "nothing"  # the "none" option's class name (its texts: the templates over an empty scene)
THRESHOLD = 0.5
# A tag is present where the image is more like it than this share of ImageNet's things (module doc).
# Chosen from that reading, then checked: on 15 scikit-image photos micro-F1 rose from 0.15 (every tag
# beat "none") to 0.44; on Fashion-MNIST mosaics 0.388 -> 0.409 (grids), 0.376 -> 0.326 (several scales,
# where small garments fall under it); mAP unchanged (docs/benchmarks.md, "Zero-shot tags: where a tag
# is present").
REFERENCE_QUANTILE = 0.9


def _with_none(tags, what: str) -> list:
    if NONE in tags:
        raise ValueError(f"{NONE!r} is the 'none' option of {what}: rename that tag")
    return [*tags, NONE]


def tag_pipeline(tags, **options):
    """The :class:`TagPrior` over ``tags`` and the "none" option (``zeroshot --multilabel``)."""
    return TagPrior(_with_none(tags, "--multilabel"), **options)


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
        self.offsets_ = reference_offsets(self)
        return self

    def _loaded(self, config: dict) -> "TagPrior":
        if not self.classes or self.classes[-1] != NONE:
            raise ValueError(f"a tag prior's last class must be {NONE!r}, not {self.classes[-1:]}")
        self.classes_ = np.asarray(self.classes[:-1], dtype=object)
        # saved before the shift existed: none (the numbers the model was fitted with)
        offsets = np.asarray(config.get("tag_offsets", np.zeros(len(self.classes_))), np.float64)
        if offsets.shape != (len(self.classes_),) or not np.isfinite(offsets).all():
            raise ValueError(f"field 'tag_offsets' must hold {len(self.classes_)} finite numbers")
        self.offsets_ = offsets
        return self

    def log_proba_reading(self, reading: dict) -> np.ndarray:
        """(N, tags) each tag's log-odds against "none" (its probability is their sigmoid)."""
        return tag_log_odds(self, reading)

    def _write(self, folder):
        return {**super()._write(folder), "tags": True, "tag_offsets": [float(v) for v in self.offsets_]}


SAVED_KINDS["tags"] = TagPrior


def load_prior(folder):
    """A saved language prior: a :class:`TagPrior` where its ``pipeline.json`` says ``tags``, else
    the :class:`~.pipeline.ZeroShotPipeline`."""
    return ZeroShotPipeline.load(folder)


def tag_log_odds(pipeline, reading: dict) -> np.ndarray:
    """(N, tags) log-odds of each tag against "none", averaged over the pipeline's ways, shifted
    by the tags' :func:`reference_offsets` (0.5 = as like the tag as the reference quantile)."""
    return _raw_log_odds(pipeline, {way: pipeline.vectors(reading, way) for way in pipeline.ways_}) - pipeline.offsets_


def _raw_log_odds(pipeline, vectors: dict) -> np.ndarray:
    total = 0.0
    for way, zs in pipeline.ways_.items():
        z = zs.decision_function(vectors[way]) * zs.scale_
        total = total + (z[:, :-1] - z[:, -1:])
    return total / len(pipeline.ways_)


def reference_offsets(pipeline) -> np.ndarray:
    """(tags,) the :data:`REFERENCE_QUANTILE` quantile of each tag's raw log-odds over the concept
    bank's 1,000 ImageNet things read as images (module doc); zeros for ways without the bank."""
    if not set(pipeline.ways_) <= {"conse", "linear"}:
        return np.zeros(len(pipeline.classes) - 1)
    from ..text.concepts import default_bank
    from .image_text import text_side

    things = default_bank(text_side(pipeline.encoder, pipeline.text_model)).embeddings
    raw = _raw_log_odds(pipeline, dict.fromkeys(pipeline.ways_, things))
    return np.quantile(np.asarray(raw, np.float64), REFERENCE_QUANTILE, axis=0)  # float64 as saved and loaded


def tile_views(view: str | None, grid: int) -> list:
    """``(function, key)`` of each tile (row-major) of a ``grid`` x ``grid`` split of ``view``."""
    from ..features.views import tile_view

    return [tile_view(view, grid, index) for index in range(grid * grid)]


def _read_views(pipeline, X, views):
    from .pipeline import read_views

    return read_views(X, pipeline.encoder, views, cache=pipeline.cache, batch_size=pipeline.batch_size,
                      quiet=pipeline.quiet)


def best_tile(pipeline, sets, paths) -> np.ndarray:
    """(N, tags) the largest log-odds of each tag over the FeatureSets ``sets`` (one per tile), rows
    in ``paths`` order; -inf where no tile of an image was read."""
    pos = {p: i for i, p in enumerate(paths)}
    best = np.full((len(paths), len(pipeline.classes) - 1), -np.inf)
    for fs in sets:
        rows = [pos[p] for p in fs.paths]
        if rows:
            best[rows] = np.maximum(best[rows], tag_log_odds(pipeline, pipeline.reading(fs)))
    return best


def tile_log_odds(pipeline, X, grid: int, paths) -> np.ndarray:
    """(N, tags) the best tile's log-odds of each tag: the images ``X`` (rows in ``paths`` order)
    cut into ``grid`` x ``grid`` tiles, each tile read as the pipeline reads an image (its view,
    full input size, cached per tile; each image decoded once for all its tiles,
    :func:`~..features.multi_view.extract_views`) and scored against "none"; the max over the
    tiles. A tile that fails leaves its image's other tiles."""
    return best_tile(pipeline, _read_views(pipeline, X, tile_views(pipeline.view_, grid)), paths)


def tag_probabilities(pipeline, X, tiles: int = 0) -> tuple[np.ndarray, object]:
    """Independent tag probabilities (N, tags) of images ``X`` and their FeatureSet; with ``tiles``
    (a grid of 2..4) each tag's log-odds are the larger of the whole image's and its best tile's
    (:func:`tile_log_odds`; the whole image and its tiles read in one pass, one decode per image):
    an object that fills one tile counts even where the whole image drowns it. On Fashion-MNIST
    mosaics (docs/benchmarks.md, issue 24) 2x2 tiles raised zero-shot mAP from 0.325 to 0.404
    (grids; the mean of the two 0.382, tiles alone 0.402, 3x3 0.394): :data:`DEFAULT_TILES`."""
    if not tiles:
        return _scores(pipeline, pipeline.read(X), [])
    sets = _read_views(pipeline, X, _whole_and_tiles(pipeline.view_, tiles))
    return _scores(pipeline, sets[0], sets.sets[1:])


def fit_tag_probabilities(pipeline, X, tiles: int = 0) -> tuple[np.ndarray, object]:
    """``pipeline.fit(X)`` then :func:`tag_probabilities` of the same images, each image read and
    decoded once for both (``wordsight zeroshot --multilabel``): the view chosen from ``X``, the
    whole image and its tiles read in one pass, the pipeline fitted on the whole images' reading."""
    from ..io.sources import open_source

    X = open_source(X)
    view = pipeline.choose_view(X)
    sets = _read_views(pipeline, X, _whole_and_tiles(view, tiles))
    pipeline.fit(reading=pipeline.reading(sets[0]), view=view)
    return _scores(pipeline, sets[0], sets.sets[1:])


def _whole_and_tiles(view: str, tiles: int) -> list:
    from ..features.views import get_view

    return [get_view(view), *(tile_views(view, tiles) if tiles else [])]


def _scores(pipeline, fs, tile_sets) -> tuple[np.ndarray, object]:
    if not fs.samples:
        return np.zeros((0, len(pipeline.classes) - 1)), fs
    z = tag_log_odds(pipeline, pipeline.reading(fs))
    if tile_sets:
        z = np.maximum(z, best_tile(pipeline, tile_sets, fs.paths))  # a failed tile is -inf: the whole image's
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
