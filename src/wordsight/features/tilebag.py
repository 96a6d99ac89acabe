"""Reading a tile bag (``tilebag:<grids>:<encoder>``, :mod:`wordsight.encoders.tilebag`): each tile
of each grid split read as its own image by the inner encoder, through the same cached extraction
as every view (:func:`~wordsight.features.views.tile_of`; the tiles' cache entries are the tile
views' own), the tiles' embeddings side by side in one row per image.

An image is kept when every tile of it was read; one that fails is reported once, with the reason
of its first failing tile.
"""
from __future__ import annotations

import numpy as np

from ..encoders.tilebag import PREFIX, split
from .views import tile_of


def is_bag(model) -> bool:
    """Whether ``model`` (a name or an encoder) names a tile bag."""
    return isinstance(model, str) and model.startswith(PREFIX + ":")


def reader(model: str) -> str:
    """The encoder that runs for ``model``: a tile bag's inner encoder, else ``model`` itself."""
    return split(model[len(PREFIX) + 1:])[1] if is_bag(model) else model


def bag_views(grids, view=None, view_key: str = "") -> list[tuple]:
    """``(view, view_key)`` of every tile of ``grids``, row-major, grid by grid, each cut from the
    image seen through ``view`` (None: the image itself) named ``view_key``."""
    return [tile_of(view, view_key, g, i) for g in grids for i in range(g * g)]


def bag_parts(model: str, view=None, view_key: str = "") -> tuple[str, list[tuple]]:
    """(the inner encoder, the tile views to read with it) of the tile bag ``model``."""
    grids, inner = split(model[len(PREFIX) + 1:])
    return inner, bag_views(grids, view, view_key)


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
