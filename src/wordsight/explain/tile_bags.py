"""Explanations that reach through a tile bag (``tilebag:<grids>:<encoder>``) and the mil head.

A tile bag reads every tile of a 2x2 / 3x3 split as its own image (:mod:`wordsight.features.tilebag`);
here each tile is cut and read by extraction's own code (one decode, :meth:`EmbedBatch.view_inputs`
with the bag's tile views), so the torch path's row is the row ``predict_proba`` scores, and each
tile has its rectangle on the original image (as :func:`wordsight.features.views.tile_of` cuts it
from the decoded image, scaled back where a JPEG was draft-decoded) and the part of it the tile's
model input covers (the inner encoder's resize and centre crop).

Two maps, per tag (class):

- ``tiles`` (the mil head's own evidence): each tile's pooling weight for the tag (log-sum-exp:
  the softmax of the tiles' scores, the derivative of the pooled score; max: the best tile)
  painted onto its rectangle, the grids summed (the weights of all tiles of all grids sum to 1, so
  the map lies in [0, 1]: the share of the pooled evidence that comes from tiles covering a pixel).
- ``gradcam`` / ``gradcam++`` (an inner CNN encoder, any differentiable head): Grad-CAM through
  the whole model, with every tile's feature map held: by the chain rule the gradient reaching a
  tile is its pooling weight times its own score's gradient, so each tile's CAM comes weighted by
  its pooling weight; each is placed into the part of its rectangle the tile's input covers, and
  the whole image's encoder (the global term) adds its own CAM over its view. Each map is a
  density (a feature-map cell's value over the original pixels the cell covers), so tiles and the
  whole image add up alike; the sum is scaled to a maximum of 1.

:func:`mil_evidence` gives the numbers behind the tag's score: each tile's score and weight, the
pooled term, the global term and the bias (their sum is the head's logit; its sigmoid, or softmax
for one label per image, is ``predict_proba``'s without a language prior).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..encoders.tilebag import PREFIX, is_bag, split
from ..io.images import ImageError
from ._pipeline import Subject, View, view_box

__all__ = ["TileReading", "bag_explanation", "bag_of", "is_bag", "mil_evidence", "tile_boxes", "tile_map",
           "tile_reading", "tiles_of_views"]

TILE_MAP = "tiles: each tile's pooling weight for the class on its rectangle, grids summed"


@dataclass
class TileReading:
    """The tiles of one image as a tile bag reads them."""

    name: str  # the bag's encoder name
    grids: tuple[int, ...]
    rects: np.ndarray  # (tiles, 4) each tile's rectangle (left, top, right, bottom), original pixels
    seen: np.ndarray  # (tiles, 4) the part of each rectangle its model input covers
    inputs: np.ndarray  # (tiles, 3, s, s) float32: extraction's model inputs, row-major, grid by grid


def bag_of(subject: Subject) -> str | None:
    """The tile bag among the explained model's encoders (None: none)."""
    return next((n for n in getattr(subject, "encoder_names", []) if is_bag(n)), None)


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


def tile_reading(subject: Subject, view: View, name: str) -> TileReading:
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
    view.readings[key] = TileReading(name, grids, rects, seen, np.stack([x for x, _ in got]).astype(np.float32))
    return view.readings[key]


def tiles_of_views(views: np.ndarray, name: str, enc) -> np.ndarray:
    """The tiles of each uint8 view (B, S, S, 3), each preprocessed by the bag's inner encoder
    ``enc``: (B * tiles, 3, s, s), image by image (LIME and SHAP re-run the model on perturbed views)."""
    from ..features.tilebag import bag_views

    grids = split(name[len(PREFIX) + 1:])[0]
    cuts = [tile for tile, _ in bag_views(grids)]
    return np.stack([enc.preprocess(cut(Image.fromarray(v))) for v in views for cut in cuts])


# ---------------------------------------------------------------------------------------- the mil head
def mil_evidence(subject: Subject, view: View, target: int) -> dict | None:
    """The mil head's terms of class ``target`` for the image (module doc), each tile with its grid,
    index, rectangle, score and pooling weight; None when the head scores no instances."""
    name = bag_of(subject)
    head = getattr(subject.model, "head_", None)
    if name is None or not hasattr(head, "instance_terms"):
        return None
    t = head.instance_terms(np.asarray(subject.reading(view).matrix[:1], np.float64))
    if t is None:
        return None
    tiles = tile_reading(subject, view, name)
    where = [(g, i) for g in tiles.grids for i in range(g * g)]
    pooled, glob = float(t["pooled"][0, target]), float(t["global"][0, target])
    return {
        "encoder": name, "pool": head.info.get("pool", head.pool),
        "logit": pooled + glob + float(t["bias"][target]), "pooled": pooled, "global": glob,
        "bias": float(t["bias"][target]),
        "global_share": abs(glob) / (abs(glob) + abs(pooled)) if glob or pooled else 0.0,
        "tiles": [{"grid": g, "tile": i, "box": [round(float(v), 1) for v in rect],
                   "score": float(t["scores"][0, j, target]), "weight": float(t["weights"][0, j, target])}
                  for j, ((g, i), rect) in enumerate(zip(where, tiles.rects))],
    }


def tile_map(size: tuple[int, int], rects: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(H, W) float32: each tile's weight added over its rectangle (rounded to pixels)."""
    w, h = size
    out = np.zeros((h, w), np.float64)
    for (left, top, right, bottom), wt in zip(rects, weights):
        out[int(round(top)):int(round(bottom)), int(round(left)):int(round(right))] += wt
    return out.astype(np.float32)


# ---------------------------------------------------------------------------------------- the maps
def bag_explanation(subject: Subject, view: View, target: int, method: str):
    """(heatmap (H, W) at the original size, the mask of what the model saw, facts) of a model with a
    tile bag for ``gradcam``, ``gradcam++`` or ``tiles``; None for another method or model (the
    ordinary path). Grad-CAM falls back to the tile map where gradients cannot reach the tiles'
    pixels (the facts say so)."""
    name = bag_of(subject)
    if name is None or method not in ("gradcam", "gradcam++", "tiles"):
        if method == "tiles":
            raise ValueError("method 'tiles' explains a model whose encoders include a tile bag "
                             "(tilebag:<grids>:<encoder>) scored by the mil head")
        return None
    head = getattr(subject.model, "head_", None)
    if head is None:  # an ensemble's members are explained the ordinary way
        return None
    why = None
    if method != "tiles":
        if not head.differentiable:
            why = f"the {head.name!r} head is not differentiable"
        elif not hasattr(subject.encoder(name), "forward_features"):
            why = f"{name}'s encoder has no CNN feature map"
        else:
            return _tile_cam(subject, view, target, method, name)
    if not hasattr(head, "instance_terms"):
        raise ValueError(f"the tile map reads the mil head's pooling, this model's head is {head.name!r}"
                         + (f" and Grad-CAM cannot reach the tiles ({why})" if why else "")
                         + ": use method='lime', which works for every head")
    t = mil_evidence(subject, view, target)
    tiles = tile_reading(subject, view, name)
    heat = tile_map(view.size, tiles.rects, np.array([d["weight"] for d in t["tiles"]]))
    facts = {"map": TILE_MAP, "encoder": name}
    if why:
        facts["gradcam"] = f"not used: {why}"
    return heat, tile_map(view.size, tiles.rects, np.ones(len(tiles.rects))) > 0, facts


def _tile_cam(subject: Subject, view: View, target: int, method: str, name: str):
    from .cam import cam_maps, captured
    from .render import place

    names = [name] + [n for n in subject.encoder_names
                      if n != name and not is_bag(n) and hasattr(subject.encoder(n), "forward_features")]
    held = captured(subject, view, target, names)
    tiles = tile_reading(subject, view, name)
    w, h = view.size
    heat, seen = np.zeros((h, w), np.float32), np.zeros((h, w), np.float32)
    boxes = {name: tiles.seen}
    for n in names[1:]:  # a whole image's encoder reads its own centre crop (the global term)
        boxes[n] = np.asarray([view.box if n == subject.encoder_name else view_box(view.size, subject.encoder(n).config)])
    for n in names:
        maps = cam_maps(*held[n], method)[:, 0].numpy()  # (tiles or 1, h, w)
        for m, box in zip(maps, boxes[n]):
            cell = (box[2] - box[0]) * (box[3] - box[1]) / m.size  # original pixels per cell
            place(heat, m / max(cell, 1e-12), box)
            place(seen, np.ones_like(m), box)
    top = float(heat.max())
    facts = {"map": f"{method} inside each tile (weighted by the tile's pooling weight through the gradient) "
                    "and over the whole image, as densities, summed", "encoders": names}
    return (heat / top if top > 0 else heat), seen > 0, facts
