"""A tile bag's tiles of the explained image (``tilebag:<grids>:<encoder>``): each tile cut and read
by extraction's own code (one decode, :meth:`EmbedBatch.view_inputs` with the bag's tile views), so
the torch path's row is the row ``predict_proba`` scores; each tile's rectangle on the original
image (as :func:`wordsight.features.views.tile_of` cuts it from the decoded image, scaled back where
a JPEG was draft-decoded) and the part of it the tile's model input covers (the inner encoder's
resize and centre crop); and the tiles of perturbed views (LIME, SHAP, the deletion check).
The maps drawn from them are :mod:`.tile_bags`'s.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..encoders.tilebag import PREFIX, is_bag, split
from ..io.images import ImageError
from .boxes import view_box

__all__ = ["TileReading", "bags_of", "is_bag", "pasted", "perturbing", "pooled_bag", "tile_boxes", "tile_reading",
           "tiles_of_views"]


@dataclass
class TileReading:
    """The tiles of one image as a tile bag reads them."""

    name: str  # the bag's encoder name
    grids: tuple[int, ...]
    rects: np.ndarray  # (tiles, 4) each tile's rectangle (left, top, right, bottom), original pixels
    seen: np.ndarray  # (tiles, 4) the part of each rectangle its model input covers
    inputs: np.ndarray  # (tiles, 3, s, s) float32: extraction's model inputs, row-major, grid by grid
    image: Image.Image = None  # the decoded image the tiles are cut from
    small: object = None  # the tiny-image config the tiles were read with (None: the full size)


def bags_of(subject) -> list[str]:
    """Every tile bag among the explained model's encoders, in their order (a model may read
    several: ``tilebag:2:`` and ``tilebag:3:`` side by side under any head)."""
    return [n for n in getattr(subject, "encoder_names", []) if is_bag(n)]


def pooled_bag(subject) -> str | None:
    """The tile bag whose tiles the model's mil head pools: the bag whose block of the fused row
    starts where the head's ``bag`` ([start, instances, width]) starts (the mil head pools one bag;
    others in the row are columns of its global term); None without a mil head or a bag."""
    head = getattr(getattr(subject, "model", None), "head_", None)
    bag = getattr(head, "info", {}).get("bag") if hasattr(head, "instance_terms") else None
    if not bag:
        return None
    blocks = subject.model.pipeline_spec()["blocks"]
    return next((b["name"][len("image:"):] for b in blocks
                 if b.get("instances") == int(bag[1]) and b["start"] == int(bag[0])), None)


def tile_boxes(decoded: tuple[int, int], size: tuple[int, int], grids, cfg) -> tuple[np.ndarray, np.ndarray]:
    """(rectangles, seen parts) of every tile of ``grids`` (row-major, grid by grid) of an image
    decoded at ``decoded`` (width, height) whose original is ``size``, in original pixels; the seen
    part is what the tile's model input covers (``cfg``'s resize and crop, :func:`view_box`)."""
    W, H = decoded
    sx, sy = size[0] / W, size[1] / H
    rects, seen = [], []
    for g in grids:
        for i in range(g * g):
            r, c = divmod(i, g)
            left, top, right, bottom = c * W // g, r * H // g, (c + 1) * W // g, (r + 1) * H // g
            vl, vt, vr, vb = view_box((right - left, bottom - top), cfg)
            rects.append((left * sx, top * sy, right * sx, bottom * sy))
            seen.append(((left + vl) * sx, (top + vt) * sy, (left + vr) * sx, (top + vb) * sy))
    return np.asarray(rects, np.float64), np.asarray(seen, np.float64)


def tile_reading(subject, view, name: str) -> TileReading:
    """The tiles of the viewed image as the bag ``name`` reads them (kept on the view)."""
    from ..features.engines.batch import EmbedBatch
    from ..features.tilebag import bag_views
    from ..io.sources import Sample

    key = ("tiles", name)
    if key in view.readings:
        return view.readings[key]
    grids, inner = split(name[len(PREFIX) + 1:])
    fn = EmbedBatch(inner, engine="torch", small_input=subject.small_input)
    try:
        if view.frame is not None:  # a frame of a video, DICOM or TIFF
            img, small = fn.frame_image(view.sample, view.frame)
        else:
            sample = view.sample or Sample(view.name or "image", data=view.data)
            small = fn.key_parts(sample, view.data, fn.small_config())[0]  # a tiny image's tiles run small
            img = fn.decoded(view.data, small, sample.path.window if view.sample is not None else None)
    except ImageError as e:
        raise ImageError(f"{view.name}: {e}" if view.name else str(e)) from None
    got = fn.view_inputs(img, small, [tile for tile, _ in bag_views(grids)])
    bad = next((err for x, err in got if x is None), None)
    if bad is not None:
        raise ImageError(f"{view.name or 'image'}: a tile of {name}: {bad}")
    rects, seen = tile_boxes(img.size, view.size, grids, small or fn.config)
    view.readings[key] = TileReading(name, grids, rects, seen, np.stack([x for x, _ in got]).astype(np.float32),
                                     img, small)
    return view.readings[key]


def tiles_of_views(subject, views: np.ndarray, name: str, enc) -> np.ndarray:
    """The bag's tile inputs for each uint8 view (B, S, S, 3): (B * tiles, 3, s, s), image by image
    (LIME, SHAP and the deletion check re-run the model on perturbed views). With the explained image
    known (:func:`perturbing`), the tiles are cut from the decoded image with the view's changed pixels
    pasted back onto the part it covers (an unchanged view gives ``predict_proba``'s tiles); without
    it, from the view itself."""
    from ..features.engines.batch import EmbedBatch
    from ..features.tilebag import bag_views

    grids, inner = split(name[len(PREFIX) + 1:])
    cuts = [tile for tile, _ in bag_views(grids)]
    view = getattr(subject, "perturbed", None)
    fn = EmbedBatch(inner, engine="torch", small_input=subject.small_input)
    tiles = tile_reading(subject, view, name) if view is not None else None
    out = []
    for v in views:  # the tiles as extraction preprocesses them
        image = Image.fromarray(v) if tiles is None else pasted(tiles.image, view, v)
        got = fn.view_inputs(image, None if tiles is None else tiles.small, cuts)
        bad = next((err for x, err in got if x is None), None)
        if bad is not None:
            raise ImageError(f"{getattr(view, 'name', None) or 'image'}: a tile of {name}: {bad}")
        out += [x for x, _ in got]
    return np.stack(out).astype(np.float32)


def pasted(image: Image.Image, view, perturbed: np.ndarray) -> Image.Image:
    """``image`` (decoded, the tiles' source) with the pixels where ``perturbed`` differs from the
    view's own pasted onto the part of it the view covers (resized; nearest for the mask)."""
    changed = np.any(perturbed != view.image, axis=2)
    if not changed.any():
        return image
    sx, sy = image.size[0] / view.size[0], image.size[1] / view.size[1]
    left, top, right, bottom = view.box
    x0, y0 = int(round(left * sx)), int(round(top * sy))
    bw, bh = max(1, int(round(right * sx)) - x0), max(1, int(round(bottom * sy)) - y0)
    part = np.asarray(Image.fromarray(perturbed).resize((bw, bh), Image.Resampling.BILINEAR))
    mask = np.asarray(Image.fromarray(changed).resize((bw, bh), Image.Resampling.NEAREST))
    out = np.array(image.convert("RGB"))
    region = out[y0:y0 + bh, x0:x0 + bw]  # a view of out: written in place
    h, w = region.shape[:2]
    region[mask[:h, :w]] = part[:h, :w][mask[:h, :w]]
    return Image.fromarray(out)


@contextmanager
def perturbing(subject, view):
    """Within it, ``subject``'s perturbed views are copies of ``view`` (see :func:`tiles_of_views`)."""
    subjects = [subject, *getattr(subject, "members", [])]  # an ensemble's members read the same views
    before = [getattr(s, "perturbed", None) for s in subjects]
    for s in subjects:
        s.perturbed = view
    try:
        yield
    finally:
        for s, b in zip(subjects, before):
            s.perturbed = b
