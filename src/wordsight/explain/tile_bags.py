"""Explanations that reach through a tile bag (``tilebag:<grids>:<encoder>``) and the mil head.

The tiles themselves (their inputs, rectangles and the parts their inputs cover) are
:mod:`.tile_inputs`'s.

Two maps, per tag (class):

- ``tiles`` (the mil head's own evidence): each tile's pooling weight for the tag (log-sum-exp:
  the softmax of the tiles' scores, the derivative of the pooled score; max: the best tile)
  painted onto its rectangle, the grids summed (the weights of all tiles of all grids sum to 1, so
  the map lies in [0, 1]: the share of the pooled evidence that comes from tiles covering a pixel).
- ``gradcam`` / ``gradcam++`` (an inner CNN encoder, any differentiable head): Grad-CAM through
  the whole model, with every tile's feature map of every tile bag held (a model may read several
  bags, e.g. ``tilebag:2:`` and ``tilebag:3:`` under a logistic head; the mil head pools one): for a label set (the tag's score is its
  logit) the chain rule makes the gradient reaching a tile its pooling weight times its own
  score's gradient, so each tile's CAM comes weighted by its pooling weight (one label per image:
  the log-softmax adds the other classes' pooled scores, as for any Grad-CAM of this model); each
  is placed into the part of its rectangle the tile's input covers, and the whole image's encoder
  (the global term) adds its own CAM over its view. Each map is a
  density (a feature-map cell's value over the original pixels the cell covers), so tiles and the
  whole image add up alike; the sum is scaled to a maximum of 1.

:func:`mil_evidence` gives the numbers behind the tag's score: each tile's score and weight, the
pooled term, the global term and the bias (their sum is the head's logit; its sigmoid, or softmax
for one label per image, is ``predict_proba``'s without a language prior).
"""
from __future__ import annotations

import numpy as np

from ..encoders.tilebag import is_bag
from ._pipeline import Subject, View
from .boxes import view_box
from .tile_inputs import bags_of, pooled_bag, tile_reading

__all__ = ["bag_explanation", "mil_evidence", "tile_map"]

TILE_MAP = "tiles: each tile's pooling weight for the class on its rectangle, grids summed"


# ---------------------------------------------------------------------------------------- the mil head
def mil_evidence(subject: Subject, view: View, target: int) -> dict | None:
    """The mil head's terms of class ``target`` for the image (module doc), each tile with its grid,
    index, rectangle, score and pooling weight; None when the head scores no instances."""
    name = pooled_bag(subject)  # the bag the head pools (the only one whose tiles have weights)
    if name is None:
        return None
    head = subject.model.head_
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
    bags = bags_of(subject)
    if not bags or method not in ("gradcam", "gradcam++", "tiles"):
        if method == "tiles":
            raise ValueError("method 'tiles' explains a model whose encoders include a tile bag "
                             "(tilebag:<grids>:<encoder>) scored by the mil head")
        return None
    head = getattr(subject.model, "head_", None)
    if head is None:  # an ensemble's members are explained the ordinary way
        return None
    why = None
    if method != "tiles":
        cams = [b for b in bags if hasattr(subject.encoder(b), "forward_features")]
        if not head.differentiable:
            why = f"the {head.name!r} head is not differentiable"
        elif not cams:
            why = f"{', '.join(bags)}'s encoder has no CNN feature map"
        else:
            return _tile_cam(subject, view, target, method, cams)
    t = mil_evidence(subject, view, target) if hasattr(head, "instance_terms") else None
    if t is None:
        raise ValueError(f"the tile map reads the mil head's pooling, this model's head is {head.name!r}"
                         + (f" and Grad-CAM cannot reach the tiles ({why})" if why else "")
                         + ": use method='lime', which works for every head")
    name = t["encoder"]
    tiles = tile_reading(subject, view, name)
    heat = tile_map(view.size, tiles.rects, np.array([d["weight"] for d in t["tiles"]]))
    facts = {"map": TILE_MAP, "encoder": name}
    if why:
        facts["gradcam"] = f"not used: {why}"
    return heat, tile_map(view.size, tiles.rects, np.ones(len(tiles.rects))) > 0, facts


def _tile_cam(subject: Subject, view: View, target: int, method: str, bags: list[str]):
    """Every tile's CAM of every bag in ``bags`` placed into its seen part, and each whole image's
    CNN encoder's CAM over its view (module doc)."""
    from .cam import cam_maps, captured
    from .render import place

    names = bags + [n for n in subject.encoder_names if not is_bag(n) and hasattr(subject.encoder(n), "forward_features")]
    held = captured(subject, view, target, names)
    w, h = view.size
    heat, seen = np.zeros((h, w), np.float32), np.zeros((h, w), np.float32)
    boxes = {b: tile_reading(subject, view, b).seen for b in bags}  # each bag's tiles: where their inputs lie
    for n in names[len(bags):]:  # a whole image's encoder reads its own centre crop (the global term)
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
