"""Image views that help an ImageNet model read images unlike its training photos.

Fashion-MNIST (and many scans, sketches and product shots) show a light object on a black
background; ImageNet photos of garments and shoes are mostly dark-ish objects on light
backgrounds. Inverting such images before encoding changes what the ImageNet head sees
(ankle boots read as "hatchet" plain, as shoes inverted). A view is a PIL -> PIL function; pass it
with its ``view_key`` to :func:`wordsight.features.iter_features` so that its features are cached
apart from the plain image's.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from PIL import Image, ImageOps

from ..io.images import ImageError

# A light object on a plain dark background: at least DARK_SHARE of the frame's pixels are
# near-black (grey < NEAR_BLACK). Measured: Fashion-MNIST test images 99.8% qualify (median 85% of
# the frame near-black, objects often touch the border); scikit-image's natural photos 0-23%
# (the rocket's dark evening frame 2%); its Hubble deep field (light stars on black) 57%.
NEAR_BLACK = 16
DARK_SHARE = 0.5
FRAME_WIDTH = 2  # pixels of the border the background is judged on


def _frame(img: Image.Image, width: int = FRAME_WIDTH) -> np.ndarray:
    """The grey levels of the ``width``-pixel frame: top rows, bottom rows, left and right columns
    (corners in two strips). Only the strips are converted, not the whole image."""
    W, H = img.size
    w = max(1, min(width, min(W, H) // 4))
    strips = [(0, 0, W, w), (0, H - w, W, H), (0, 0, w, H), (W - w, 0, W, H)]
    return np.concatenate([np.asarray(img.crop(box).convert("L"), dtype=np.float32).ravel() for box in strips])


def border_brightness(img: Image.Image, width: int = FRAME_WIDTH) -> float:
    """Mean grey level (0-255) of a ``width``-pixel frame around the image."""
    return float(_frame(img, width).mean())


def on_dark_background(img: Image.Image) -> bool:
    """Whether the image shows a light object on a plain dark background (see DARK_SHARE)."""
    return float(np.mean(_frame(img) < NEAR_BLACK)) >= DARK_SHARE


def light_background(img: Image.Image) -> Image.Image:
    """Invert images with a plain dark background (a light object on it); others pass."""
    return ImageOps.invert(img.convert("RGB")) if on_dark_background(img) else img


def invert(img: Image.Image) -> Image.Image:
    return ImageOps.invert(img.convert("RGB"))


# name -> (function, cache key). The key names the code version: change it when the code changes.
VIEWS: dict[str, tuple[Callable[[Image.Image], Image.Image], str]] = {
    "plain": (None, ""),
    "light-background": (light_background, "light-background-v2"),
    "invert": (invert, "invert-v1"),
}


def get_view(name: str | None):
    """``(view, view_key)`` for a view name (``None`` or ``"plain"``: no transform)."""
    if not name:
        return None, ""
    if name not in VIEWS:
        raise ValueError(f"unknown view {name!r}: choose one of {', '.join(VIEWS)}")
    return VIEWS[name]


VIEW_CHOICES = ("auto", *VIEWS)
# How many images (spread over the set) the automatic choice looks at.
VIEW_SAMPLE = 32
# The automatic choice reads each JPEG drafted (DCT scaling: 1/2, 1/4, 1/8) while both sides stay at
# least this large, as extraction decodes it for a model whose resize size is 256 (EfficientNet-Lite0):
# the choice judges the frame the light-background view later judges. On 24 JPEGs of 12 MP the
# choice ran 4-6x faster (benchmarks/decode_once.py); other formats decode whole (their frame is exact).
VIEW_DECODE_SIZE = 256


def choose_view(images) -> str:
    """``light-background`` when most ``images`` (PIL) show a light object on a plain dark
    background (unlike ImageNet's photos: Fashion-MNIST, scans), else ``plain``."""
    dark = [on_dark_background(im) for im in images]
    return "light-background" if dark and sum(dark) > len(dark) / 2 else "plain"


def choose_view_of_samples(samples) -> str:
    """:func:`choose_view` on up to :data:`VIEW_SAMPLE` of ``samples`` spread over the set, each
    read bounded (its header's size checked before decoding) and decoded reduced
    (:data:`VIEW_DECODE_SIZE`); unreadable ones are skipped (they fail later, with their reason, in feature extraction)."""
    from ..io.media_read import sample_image

    if not samples:
        return "plain"
    images = []
    for i in np.linspace(0, len(samples) - 1, min(VIEW_SAMPLE, len(samples))).astype(int):
        try:  # an image, or a video / DICOM / TIFF frame decoded alone
            images.append(sample_image(samples[i], draft_size=VIEW_DECODE_SIZE))
        except (ValueError, OSError):  # ImageError, UnsafeFileError: unreadable, reported by extraction
            continue
    return choose_view(images)


# Tiles as views (zero-shot tags per tile, issue 24): tile ``index`` of a ``grid`` x ``grid`` split of
# the view's image; the key names the split, so each tile's features are cached apart.
MAX_TILE_GRID = 4


def tile_view(name: str | None, grid: int, index: int):
    """``(view, view_key)``: the view ``name``, then tile ``index`` (row-major) of its ``grid`` x
    ``grid`` split (the last row and column take the remainder pixels)."""
    if not (isinstance(grid, int) and 2 <= grid <= MAX_TILE_GRID and 0 <= index < grid * grid):
        raise ValueError(f"a tile is one of grid x grid tiles, grid 2..{MAX_TILE_GRID}: got grid {grid!r}, "
                         f"tile {index!r}")
    fn, key = get_view(name)
    return tile_of(fn, key, grid, index)


def tile_of(fn, key: str, grid: int, index: int):
    """``(view, view_key)``: the view function ``fn`` (None: the image itself) named ``key``, then
    tile ``index`` of its ``grid`` x ``grid`` split (:func:`tile_view` of a view given as a function:
    an augmented view's tiles)."""
    r, c = divmod(index, grid)

    def tile(img: Image.Image) -> Image.Image:
        img = fn(img) if fn is not None else img
        w, h = img.size
        if min(w, h) < grid:
            raise ImageError(f"{w}x{h} px is too small to cut into {grid}x{grid} tiles")
        return img.crop((c * w // grid, r * h // grid, (c + 1) * w // grid, (r + 1) * h // grid))

    return tile, f"{key}|tile-{grid}x{grid}-{index}-v1"
