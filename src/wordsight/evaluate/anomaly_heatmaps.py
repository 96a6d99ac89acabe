"""Heatmaps of where an image is abnormal (a ``patchcore`` detector): the patch-distance grid
upsampled bilinearly to the picture the encoder saw and smoothed with a Gaussian (sigma 4 px, as
PatchCore), drawn over the picture; 1.0 on the colour scale is the decision threshold."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

SIGMA = 4.0
TOP = 1.5  # the colour scale ends at 1.5 x the threshold's patch distance


def upsample(grid: np.ndarray, size: int) -> np.ndarray:
    """(size, size) map of a (g, g) patch grid: bilinear, then Gaussian-smoothed."""
    from scipy.ndimage import gaussian_filter, zoom

    m = zoom(np.asarray(grid, np.float64), size / grid.shape[0], order=1, grid_mode=True, mode="nearest")
    return gaussian_filter(m, SIGMA)


def overlay(picture: np.ndarray, grid: np.ndarray):
    """A PIL image: ``picture`` (S, S, 3 uint8) with the upsampled map in colour over it."""
    from matplotlib import colormaps
    from PIL import Image

    m = np.clip(upsample(grid, picture.shape[0]) / TOP, 0, 1)
    colour = colormaps["inferno"](m)[..., :3] * 255
    alpha = 0.55 * m[..., None] + 0.15
    return Image.fromarray(np.uint8(np.clip((1 - alpha) * picture + alpha * colour, 0, 255)))


def heatmap_png(picture: np.ndarray, grid: np.ndarray) -> bytes:
    """:func:`overlay` as PNG bytes."""
    buf = io.BytesIO()
    overlay(picture, grid).save(buf, "PNG")
    return buf.getvalue()


def write_heatmaps(det, X, folder) -> list[tuple[str, str]]:
    """One overlay PNG per readable image of ``X`` in ``folder`` (``<index>_<stem>.png``); returns
    (image path, heatmap file) pairs."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    F, pictures = det.featurize_patches(X, views=True)
    maps = det.heatmaps_featurized(F)
    out = []
    for i, (s, pic, grid) in enumerate(zip(F.samples, pictures, maps)):
        name = folder / f"{i:05d}_{Path(str(s.path)).stem[:60]}.png"
        overlay(pic, grid).save(name)
        out.append((str(s.path), str(name)))
    return out
