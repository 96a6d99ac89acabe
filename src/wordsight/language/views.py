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


def border_brightness(img: Image.Image, width: int = 2) -> float:
    """Mean grey level (0-255) of a ``width``-pixel frame around the image."""
    g = np.asarray(img.convert("L"), dtype=np.float32)
    w = max(1, min(width, min(g.shape) // 4))
    frame = np.concatenate([g[:w].ravel(), g[-w:].ravel(), g[:, :w].ravel(), g[:, -w:].ravel()])
    return float(frame.mean())


def light_background(img: Image.Image, threshold: float = 96.0) -> Image.Image:
    """Invert images whose border is dark (a light object on a dark background); others pass."""
    if border_brightness(img) >= threshold:
        return img
    return ImageOps.invert(img.convert("RGB"))


def invert(img: Image.Image) -> Image.Image:
    return ImageOps.invert(img.convert("RGB"))


# name -> (function, cache key). The key names the code version: change it when the code changes.
VIEWS: dict[str, tuple[Callable[[Image.Image], Image.Image], str]] = {
    "plain": (None, ""),
    "light-background": (light_background, "light-background-v1"),
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
# A frame darker than this (0-255 grey) marks a light object on a dark background.
DARK_BORDER = 96.0
# How many images (spread over the set) the automatic choice looks at.
VIEW_SAMPLE = 32


def choose_view(images) -> str:
    """``light-background`` when most ``images`` (PIL) have a dark border (a light object on a
    dark background, unlike ImageNet's photos: Fashion-MNIST, scans), else ``plain``."""
    levels = [border_brightness(im) for im in images]
    return "light-background" if levels and float(np.median(levels)) < DARK_BORDER else "plain"


def choose_view_of_samples(samples) -> str:
    """:func:`choose_view` on up to :data:`VIEW_SAMPLE` of ``samples`` spread over the set;
    unreadable ones are skipped (they fail later, with their reason, in feature extraction)."""
    from ..features.engines.batch import read_bytes
    from ..io.images import ImageError, decode_image

    if not samples:
        return "plain"
    images = []
    for i in np.linspace(0, len(samples) - 1, min(VIEW_SAMPLE, len(samples))).astype(int):
        data, _ = read_bytes(samples[i])
        if not data:
            continue
        try:
            images.append(decode_image(data))
        except ImageError:
            continue
    return choose_view(images)
