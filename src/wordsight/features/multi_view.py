"""Several views of the same images in one read: :func:`extract_views`.

``extract_views(data, model, views=[(fn, key), ...])`` gives what ``extract_features(data, model,
view=fn, view_key=key)`` gives for each view (the same features, the same cache entries, either
hits the other's), but each image is read, bounded and hashed once, the cache is looked up for
every view first, and an image is decoded once, only if some view misses
(:class:`~.engines.multi_view.MultiViewBatch`). A file that cannot be read or decoded is one
problem in :attr:`ViewSets.failures`. The whole image and its tiles
(:func:`~.views.tile_view`) read this way cost one decode instead of one per tile.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..encoders import ImageEncoder
from ..io.images import DEFAULT_MAX_PIXELS
from ..io.sources import Problem, open_source
from .cache import open_cache
from .extract import FeatureSet, _progress, chunks


@dataclass
class ViewSets:
    """One :class:`~.extract.FeatureSet` per view, in the order the views were given
    (``sets[v]``, also ``views[v]`` by index and iteration); ``failures``: each file that failed,
    once (its first reason), whatever the number of views."""

    sets: list[FeatureSet]
    failures: list[Problem]

    def __getitem__(self, v: int) -> FeatureSet:
        """The FeatureSet of view ``v``."""
        return self.sets[v]

    def __len__(self) -> int:
        return len(self.sets)

    def __iter__(self):
        return iter(self.sets)


def extract_views(
    data,
    model: str | ImageEncoder = "efficientnet-lite0",
    views: list | None = None,
    *,
    precision: str = "auto",
    **options,
) -> ViewSets:
    """Features of ``data`` (anything :func:`~wordsight.io.sources.open_source` takes) through each
    of ``views``, each image read and decoded once: :func:`extract_models` with the one read
    ``(model, views, precision)``.

    Parameters
    ----------
    data, model, precision
        As :func:`~wordsight.features.extract.iter_features` takes them.
    views : list of (function or None, str)
        ``(view, view_key)`` pairs as ``extract_features`` takes one; ``None`` (the default) the
        plain image alone.
    **options
        ``cache``, ``batch_size``, ``workers``, ``max_pixels``, ``quiet``, ``engine``,
        ``small_input``: passed on to :func:`extract_models` (its defaults; ``engine='ray'`` is not
        offered: run :func:`~wordsight.features.extract.extract_features` per view there).

    Returns
    -------
    ViewSets
        ``sets[v]`` equals ``extract_features(data, model, view=views[v][0], view_key=views[v][1])``.
    """
    return extract_models(data, [(model, views, precision)], **options)[0]


def extract_models(
    data,
    reads: list[tuple],
    *,
    cache=None,
    batch_size: int | None = None,
    workers: int = 4,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    quiet: bool = False,
    engine: str = "auto",
    small_input: int | str | None = "auto",
) -> list[ViewSets]:
    """:func:`extract_views` of several models from one read of each image, decoded once for all
    of them where they ask for the same decoding (:mod:`.engines.shared_decode`): a global encoder,
    ``tiles:N:`` and a tile bag's tiles (:func:`wordsight.estimator.feature_blocks.extract_blocks`).

    ``reads``: ``[(model, views or None, precision), ...]``; ``cache``, ``batch_size``, ``workers``,
    ``max_pixels``, ``quiet``, ``engine``, ``small_input`` as
    :func:`~wordsight.features.extract.iter_features` takes them (``engine='ray'`` is not offered).
    Returns one :class:`ViewSets` per read, in order, each equal to
    ``extract_views(data, model, views, precision=precision)`` (the same cache entries).
    """
    from .engines.batch import EmbedBatch
    from .engines.multi_view import MultiViewBatch

    if engine == "ray":
        raise ValueError("extract_views runs on this machine: with engine='ray' call extract_features per view")
    source = open_source(data)
    store = open_cache(cache)
    reads = [(model, list(views) if views else [(None, "")], precision) for model, views, precision in reads]
    fns = [EmbedBatch(model, engine=engine, precision=precision, batch_size=batch_size, cache=store,
                      max_pixels=max_pixels, small_input=small_input) for model, _, precision in reads]
    many = MultiViewBatch.of_models([(fn, views) for fn, (_, views, _) in zip(fns, reads)])
    # about as many model inputs per chunk as a one-view extraction holds: memory stays bounded
    chunk = -(-max((batch_size or fns[0].runner.batch_size) * 2, 32) // len(many.slots))
    parts: list[list] = [[] for _ in many.slots]
    names = [model if isinstance(model, str) else model.config.name for model, _, _ in reads]
    bar = _progress(len(source.samples) + len(source.problems), quiet, "+".join(dict.fromkeys(names)))
    bar.update(len(source.problems))
    try:
        for done in chunks(many, source.samples, chunk, workers):
            for v, d in enumerate(done):
                parts[v].append(d)
            bar.update(len(done[0].samples) + len(done[0].failures))  # each image kept or failed in every view
    finally:
        bar.close()
    out, first = [], 0
    for name, (_, views, _) in zip(names, reads):
        sets = [_feature_set(list(source.problems), p, name) for p in parts[first:first + len(views)]]
        out.append(ViewSets(sets, _once(s.failures for s in sets)))
        first += len(views)
    return out


def _feature_set(problems: list, dones: list, name: str) -> FeatureSet:
    samples = [s for d in dones for s in d.samples]
    kept = [d.arrays for d in dones if d.samples]
    arrays = {n: np.concatenate([a[n] for a in kept]) for n in (kept[0] if kept else {})}
    return FeatureSet(samples, arrays, problems + [f for d in dones for f in d.failures], name,
                      sum(d.computed for d in dones), sum(d.cached for d in dones))


def _once(failure_lists) -> list[Problem]:
    seen: dict = {}
    for failures in failure_lists:
        for f in failures:
            seen.setdefault(str(f.path), f)
    return list(seen.values())
