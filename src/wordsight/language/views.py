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
