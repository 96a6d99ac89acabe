"""Reading a tile bag (``tilebag:<grids>:<encoder>``, :mod:`wordsight.encoders.tilebag`): each tile
of each grid split read as its own image by the inner encoder, all tiles of an image from one
decode (:func:`~wordsight.features.multi_view.extract_views`) with the cache entries of the tile
views (:func:`~wordsight.features.views.tile_of`), the tiles' embeddings side by side in one row
per image.

An image is kept when every tile of it was read; one that fails is reported once, with the reason
of its first failing tile.
"""
from __future__ import annotations

import numpy as np

from ..encoders.tilebag import PREFIX, is_bag, reader, split
from .views import tile_of

__all__ = ["bag_read", "bag_set", "bag_views", "combine", "extract_bag", "is_bag", "reader"]


def bag_views(grids, view=None, view_key: str = "") -> list[tuple]:
    """``(view, view_key)`` of every tile of ``grids``, row-major, grid by grid, each cut from the
    image seen through ``view`` (None: the image itself) named ``view_key``."""
    return [tile_of(view, view_key, g, i) for g in grids for i in range(g * g)]


def extract_bag(data, model: str, *, view=None, view_key: str = "", **kwargs):
    """The :class:`~wordsight.features.extract.FeatureSet` of the tile bag ``model``: row ``i``
    holds the tiles' embeddings of ``samples[i]`` side by side, ``(N, tiles * D)`` float32, every
    tile view read by the inner encoder from one decode of the image
    (:func:`~wordsight.features.multi_view.extract_views`; ``kwargs`` go to it), each with the
    cache entry ``extract_features`` gives that view (on a Ray engine: ``extract_features`` per tile)."""
    from ..io.sources import open_source
    from .extract import extract_features
    from .multi_view import extract_views

    inner, views = bag_read(model, view, view_key)
    source = open_source(data)  # listed once: every tile reads the same samples
    if kwargs.get("engine") == "ray":  # extract_views runs here only
        sets = [extract_features(source, inner, view=fn, view_key=key, **kwargs) for fn, key in views]
    else:
        sets = list(extract_views(source, inner, views, **kwargs).sets)
    return bag_set(model, sets)


def bag_read(model: str, view=None, view_key: str = "") -> tuple[str, list]:
    """(the inner encoder, its tile views) that read the tile bag ``model`` seen through ``view``."""
    grids, inner = split(model[len(PREFIX) + 1:])
    return inner, bag_views(grids, view, view_key)


def bag_set(model: str, sets):
    """The tile bag ``model``'s FeatureSet from its tiles' feature sets (in tile order)."""
    from .extract import FeatureSet

    samples, arrays, failures = combine(sets)
    return FeatureSet(samples, arrays, failures, model, sum(fs.computed for fs in sets), sum(fs.cached for fs in sets))


def combine(sets) -> tuple[list, dict, list]:
    """(samples, arrays, failures) of a bag from its tiles' feature sets (in tile order): the images
    every tile read, their tiles' embeddings side by side ``(N, tiles * D)`` float32; each failed
    image once, with its first failing tile's reason."""
    failures, seen = [], set()
    for fs in sets:
        for f in fs.failures:
            if f.path not in seen:
                seen.add(f.path)
                failures.append(f)
    keep = set.intersection(*(set(fs.paths) for fs in sets)) - seen
    samples = [s for s in sets[0].samples if s.path in keep]
    parts = []
    for fs in sets:
        pos = {p: i for i, p in enumerate(fs.paths)}
        parts.append(fs.embeddings[[pos[s.path] for s in samples]])
    return samples, ({"embedding": np.concatenate(parts, 1).astype(np.float32)} if samples else {}), failures
