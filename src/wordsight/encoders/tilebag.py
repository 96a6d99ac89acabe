"""Tile bags: every tile of one or more grid splits of an image, each read as its own image by an
image encoder, kept apart (a "bag" of instances for a multiple-instance head, issue 24).

``tilebag:2,3:efficientnet-lite0`` names the 13 tiles of a 2x2 and a 3x3 split (row-major, the 2x2
first), each cut from the decoded image and read by ``efficientnet-lite0`` as the image it is (a
28-px tile at the small input size, a photo's tile at full size: the tile views of
:func:`wordsight.features.views.tile_view`, cached per tile). Its embedding is the tiles'
embeddings side by side, ``(N, tiles * D)``; the fusion L2-normalises each tile on its own
(:func:`instances`). Unlike ``tiles:N:`` (:mod:`.tiles`: one forward pass over the resized image
cut into tiles, max- and mean-pooled), nothing is pooled here: the head scores each tile.

This module names the bag (its config, for the cache key and saved models); the reading is
:mod:`wordsight.features.tilebag`.
"""
from __future__ import annotations

import dataclasses

from ._registry import get_config, register_prefix
from .config import EncoderConfig

PREFIX = "tilebag"
MAX_GRID = 4  # as features.views.MAX_TILE_GRID: 4x4 tiles of a 224-px input are 56 px
MAX_GRIDS = 3  # at most 2x2 + 3x3 + 4x4 = 29 readings per image


def split(rest: str) -> tuple[tuple[int, ...], str]:
    """(grids, inner model name) of ``tilebag:<grid>[,<grid>...]:<model>``; a one-line ValueError
    otherwise (grids 2..4, distinct, increasing)."""
    spec, _, inner = rest.partition(":")
    parts = spec.split(",")
    ok = bool(inner) and 0 < len(parts) <= MAX_GRIDS and all(p.isdigit() and 2 <= int(p) <= MAX_GRID for p in parts)
    grids = tuple(int(p) for p in parts) if ok else ()
    if not ok or list(grids) != sorted(set(grids)):
        raise ValueError(f"{PREFIX}:{rest}: write {PREFIX}:<grids, increasing, each 2..{MAX_GRID}>:<image encoder>, "
                         f"e.g. {PREFIX}:2,3:efficientnet-lite0")
    return grids, inner


def n_tiles(grids) -> int:
    """Tiles of the grid splits ``grids``: the sum of their squares."""
    return sum(g * g for g in grids)


def instances(name: str) -> int:
    """How many instances an encoder's embedding holds side by side: a tile bag's tiles, else 1
    (read from the name alone: no model is built)."""
    if not is_bag(name):
        return 1
    return n_tiles(split(name[len(PREFIX) + 1:])[0])


def is_bag(model) -> bool:
    """Whether ``model`` (a name or an encoder) names a tile bag."""
    return isinstance(model, str) and model.startswith(PREFIX + ":")


def reader(model):
    """The encoder that runs for ``model``: a tile bag's inner encoder, else ``model`` itself."""
    return split(model[len(PREFIX) + 1:])[1] if is_bag(model) else model


def _config(rest: str) -> EncoderConfig:
    grids, inner = split(rest)
    cfg = get_config(inner)
    if cfg.modality != "image" or not cfg.input_size:
        raise ValueError(f"{PREFIX}:{rest}: {inner!r} is not an image encoder with a fixed input size")
    tiles = n_tiles(grids)
    return dataclasses.replace(cfg, name=f"{PREFIX}:{','.join(map(str, grids))}:{inner}", dim=tiles * cfg.dim,
                               has_imagenet_head=False,
                               weight_source=f"{inner}'s ({cfg.weight_source}), each of {tiles} tiles "
                                             f"({' + '.join(f'{g}x{g}' for g in grids)}) read as an image")


@register_prefix(PREFIX, _config)
def _build(rest: str):
    _config(rest)  # a bad name is refused as such
    raise ValueError(f"{PREFIX}:{rest} is read tile by tile (wordsight.features.tilebag.extract_bag), not run as "
                     "one model: this use of it (explanations, a single extraction) is not supported")
