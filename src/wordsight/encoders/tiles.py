"""Tiles: an image encoder's embeddings of a ``grid`` x ``grid`` split of the image, max- and
mean-pooled over the tiles, so that a small object keeps its own tile's evidence instead of being
drowned in the global average (issue 24, multi-label scenes).

``tiles:2:efficientnet-lite0`` resizes the whole image (no crop: objects at the border count) to
``grid`` times the inner model's input size, cuts it into ``grid * grid`` tiles of that input size,
embeds each with the inner model and returns ``[max over tiles, mean over tiles]`` (2 x the inner
width). It is an encoder like any other: its fingerprint keys the feature cache, and it takes part
in model fusion beside the global embedding (``--encoders efficientnet-lite0,tiles:2:efficientnet-lite0``).
No ImageNet head (the text block and the prior read the global encoder).
"""
from __future__ import annotations

import dataclasses

from ._registry import create, get_config, register_prefix
from .base import CNNEncoder, ImageEncoder
from .config import EncoderConfig

PREFIX = "tiles"
MAX_GRID = 4


def split(rest: str) -> tuple[int, str]:
    """(grid, inner model name) of ``tiles:<grid>:<model>``; a one-line ValueError otherwise."""
    grid, _, inner = rest.partition(":")
    if not grid.isdigit() or not 2 <= int(grid) <= MAX_GRID or not inner:
        raise ValueError(f"tiles:{rest}: write tiles:<grid 2..{MAX_GRID}>:<image encoder>, e.g. "
                         "tiles:2:efficientnet-lite0")
    return int(grid), inner


def _config(rest: str) -> EncoderConfig:
    grid, inner = split(rest)
    cfg = get_config(inner)
    if cfg.modality != "image" or not cfg.input_size:
        raise ValueError(f"tiles:{rest}: {inner!r} is not an image encoder with a fixed input size")
    return dataclasses.replace(cfg, name=f"{PREFIX}:{grid}:{inner}", dim=2 * cfg.dim, has_imagenet_head=False,
                               input_size=grid * cfg.input_size, resize_size=grid * cfg.input_size,
                               resize_mode="exact",
                               weight_source=f"{inner}'s ({cfg.weight_source}), over {grid}x{grid} tiles")


class TileEncoder(ImageEncoder):
    """(B, 3, g*S, g*S) in; the inner encoder's embeddings of the g*g tiles, max and mean pooled."""

    def __init__(self, inner: ImageEncoder, grid: int, config: EncoderConfig):
        super().__init__()
        self.inner, self.grid, self.config = inner, grid, config
        # Any input size when the inner model takes any (a CNN): tiny images get the small input
        # size as the inner model would (features.engines.batch.small_config), split into tiles.
        self.flexible_size = bool(getattr(inner, "flexible_size", isinstance(inner, CNNEncoder)))

    def forward(self, x):
        """``{'embedding': (B, 2 * D)}``: ``[max, mean]`` over the tiles' embeddings."""
        b, c, h, w = x.shape
        g = self.grid
        th, tw = h // g, w // g
        tiles = (x[:, :, :th * g, :tw * g].reshape(b, c, g, th, g, tw).permute(0, 2, 4, 1, 3, 5)
                 .reshape(b * g * g, c, th, tw))
        emb = self.inner(tiles)["embedding"].reshape(b, g * g, -1)
        import torch

        return {"embedding": torch.cat([emb.amax(1), emb.mean(1)], 1)}


@register_prefix(PREFIX, _config)
def _build(rest: str):
    grid, inner = split(rest)
    return TileEncoder(create(inner), grid, _config(rest)).eval()
