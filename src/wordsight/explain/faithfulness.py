"""Are the maps faithful? Delete the most salient pixels and see the class lose probability.

For each image: explain the predicted class, then delete the ``fraction`` most salient pixels of
the model's view and, separately, a random ``fraction``; a faithful map makes the first drop the
predicted class's probability more. Two random baselines: ``pixels`` (scattered pixels) and
``blobs`` (the top ``fraction`` of a smooth random field as coarse as a Grad-CAM map: the same
kind of region, in a random place).

Deleting means (``fill``):
- ``"impute"`` (default): ROAD's linear imputation (Rong et al. 2022, "A consistent and efficient
  evaluation strategy for attribution methods"): each deleted pixel becomes the mean of its
  neighbours, solved by repeated averaging from a blurred start. A deleted region becomes a smooth
  patch continued from its border, so its content is gone; scattered deleted pixels are filled
  from the pixels around them, so deleting them does not add noise that no map could foresee.
- ``"blur"``: a strongly blurred copy of the view, as in RISE's deletion metric.
- ``"mean"``: the encoder's mean colour (model input zero).
With the last two, 20% scattered pixels are noise over the whole image, which hurts a CNN about
as much as losing its most salient region (measured: docs/benchmarks.md, "Explanations"), so the
comparison would say more about noise robustness than about the map.
"""
from __future__ import annotations

import numpy as np
import torch.nn.functional as F

from ._pipeline import as_subject


def _top_mask(values: np.ndarray, fraction: float, rng) -> np.ndarray:
    """The ``fraction`` largest entries (ties broken at random)."""
    v = values.ravel() + rng.uniform(0, 1e-6, values.size)
    k = int(round(fraction * values.size))
    mask = np.zeros(values.size, bool)
    mask[np.argpartition(-v, k - 1)[:k]] = True
    return mask.reshape(values.shape)


def _blob_field(shape, rng, cells: int = 7) -> np.ndarray:
    import torch

    g = torch.from_numpy(rng.normal(size=(1, 1, cells, cells)).astype(np.float32))
    return F.interpolate(g, size=shape, mode="bilinear", align_corners=False)[0, 0].numpy()


FILLS = ("impute", "blur", "mean")


def _blurred(image: np.ndarray) -> np.ndarray:
    from PIL import Image, ImageFilter

    return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(max(2.0, image.shape[0] / 16))))


def impute(image: np.ndarray, mask: np.ndarray, iterations: int = 64) -> np.ndarray:
    """``image`` (H, W, 3) uint8 with the ``mask`` pixels replaced by the mean of their 8
    neighbours (iterated from a blurred start, so large holes converge too)."""
    from scipy.ndimage import uniform_filter

    out = image.astype(np.float32)
    out[mask] = _blurred(image)[mask]
    for _ in range(iterations):
        neighbours = (uniform_filter(out, size=(3, 3, 1), mode="nearest") * 9 - out) / 8
        out[mask] = neighbours[mask]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def delete(image: np.ndarray, mask: np.ndarray, fill: str, subject) -> np.ndarray:
    """``image`` with the ``mask`` pixels deleted the ``fill`` way (see the module doc)."""
    if fill == "impute":
        return impute(image, mask)
    if fill == "mean":
        filler = np.broadcast_to(subject.fill_colour(), image.shape).astype(np.uint8)
    elif fill == "blur":
        filler = _blurred(image)
    else:
        raise ValueError(f"fill must be one of {', '.join(FILLS)}, not {fill!r}")
    out = image.copy()
    out[mask] = filler[mask]
    return out


def deletion_check(model, images, method: str = "gradcam", fraction: float = 0.2, n_random: int = 3,
                   seed: int = 0, fill: str = "impute", **explain_options) -> dict:
    """Per image and on average: the predicted class's probability before, after deleting the
    most salient ``fraction`` of the view, and after deleting random ``fraction``s (mean over
    ``n_random`` draws, for both baselines)."""
    from .api import explain_one
    from .tile_inputs import perturbing

    subject = as_subject(model)
    rng = np.random.default_rng(seed)
    rows = []
    for im in images:
        e = explain_one(subject, im, method, None, **explain_options)
        view, vmap = e.view, e.view_heatmap
        c = subject.class_index(e.target)
        masks = [_top_mask(vmap, fraction, rng)]
        masks += [_top_mask(rng.uniform(size=vmap.shape), fraction, rng) for _ in range(n_random)]
        masks += [_top_mask(_blob_field(vmap.shape, rng), fraction, rng) for _ in range(n_random)]
        batch = [view.image] + [delete(view.image, m, fill, subject) for m in masks]
        with perturbing(subject, view):  # a tile bag's tiles: cut from the image with the deletions
            p = subject.proba_views(np.stack(batch))[:, c]
        rows.append({"path": e.path, "class": e.target, "p": float(p[0]), "p_salient": float(p[1]),
                     "p_random_pixels": float(p[2:2 + n_random].mean()),
                     "p_random_blobs": float(p[2 + n_random:].mean())})
    drop = {
        k: float(np.mean([r["p"] - r[f"p_{k}"] for r in rows])) for k in ("salient", "random_pixels", "random_blobs")
    }
    wins = {k: float(np.mean([r["p_salient"] < r[f"p_{k}"] for r in rows])) for k in ("random_pixels", "random_blobs")}
    return {"method": method, "fraction": fraction, "fill": fill, "images": len(rows), "mean_drop": drop,
            "salient_beats_random": wins, "rows": rows}
