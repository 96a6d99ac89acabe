"""Maps at the original image size, and the overlay PNG a person looks at."""
from __future__ import annotations

import numpy as np
from PIL import Image

from ._pipeline import View


def to_original(view_map: np.ndarray, view: View) -> np.ndarray:
    """A map over the view placed on the original image: (H, W) float32, zero outside the part of
    the image the model saw (the centre crop)."""
    w, h = view.size
    out = np.zeros((h, w), np.float32)
    place(out, view_map, view.box)
    return out


def from_original(heat: np.ndarray, view: View) -> np.ndarray:
    """A map at the original size read back over the view (S, S): the part the view covers, resized
    (what the deletion check ranks the view's pixels by)."""
    left, top, right, bottom = (int(round(v)) for v in view.box)
    part = heat[max(0, top):max(top + 1, bottom), max(0, left):max(left + 1, right)]
    s = view.image.shape[0]
    return np.asarray(Image.fromarray(part.astype(np.float32), mode="F").resize((s, s), Image.Resampling.BILINEAR))


def place(out: np.ndarray, part_map: np.ndarray, box) -> None:
    """Add ``part_map`` resized (bilinear) onto the box (left, top, right, bottom; original pixels,
    rounded) of the map ``out``, in place (a tile's map onto its rectangle)."""
    h, w = out.shape
    left, top, right, bottom = box
    bw, bh = max(1, int(round(right - left))), max(1, int(round(bottom - top)))
    part = np.asarray(
        Image.fromarray(part_map.astype(np.float32), mode="F").resize((bw, bh), Image.Resampling.BILINEAR)
    )
    x0, y0 = int(round(left)), int(round(top))
    x1, y1 = min(w, x0 + bw), min(h, y0 + bh)
    out[y0:y1, x0:x1] += part[: y1 - y0, : x1 - x0]


def seen_mask(view: View) -> np.ndarray:
    w, h = view.size
    left, top, right, bottom = (int(round(v)) for v in view.box)
    m = np.zeros((h, w), bool)
    m[max(0, top):min(h, bottom), max(0, left):min(w, right)] = True
    return m


def overlay(image: Image.Image, heatmap: np.ndarray, seen: np.ndarray | None = None, alpha: float = 0.5,
            cmap: str = "jet") -> Image.Image:
    """The image with the map's positive part in colour on top; what the model never saw (outside
    its centre crop) is dimmed."""
    from matplotlib import colormaps

    rgb = np.asarray(image.convert("RGB"), np.float32) / 255.0
    m = np.clip(heatmap, 0, None)
    top = float(m.max())
    m = m / top if top > 0 else m
    colour = colormaps[cmap](m)[..., :3]
    a = alpha * (0.25 + 0.75 * m)[..., None]  # faint where there is no evidence
    out = (1 - a) * rgb + a * colour
    if seen is not None:
        out[~seen] = 0.35 * rgb[~seen]
    return Image.fromarray(np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8))
