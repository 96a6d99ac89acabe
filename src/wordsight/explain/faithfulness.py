"""Are the maps faithful? Delete the most salient pixels and see the class lose probability.

For each image: explain the predicted class, then delete the ``fraction`` most salient pixels of
the model's view and, separately, a random ``fraction``; a faithful map makes the first drop the
predicted class's probability more. Two random baselines: ``pixels`` (scattered pixels) and
``blobs`` (the top ``fraction`` of a smooth random field as coarse as a Grad-CAM map: the same
kind of region, in a random place).

Deleting means replacing by a strongly blurred copy of the view (``fill="blur"``, the default,
as in RISE's deletion metric) or by the encoder's mean colour (``fill="mean"``, model input zero).
With the flat colour, 20% scattered grey pixels are salt-and-pepper noise over the whole image,
which hurts a CNN more than losing any one region (measured: see the README's benchmark), so the
comparison would say more about noise robustness than about the map; a blurred pixel carries
the local colour and removes only detail.
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


def _filler(image: np.ndarray, fill: str, subject) -> np.ndarray:
    if fill == "mean":
        return np.broadcast_to(subject.fill_colour(), image.shape).astype(np.uint8)
    if fill == "blur":
        from PIL import Image, ImageFilter

        radius = max(2.0, image.shape[0] / 16)
        return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius)))
    raise ValueError(f"fill must be 'blur' or 'mean', not {fill!r}")


def deletion_check(model, images, method: str = "gradcam", fraction: float = 0.2, n_random: int = 3,
                   seed: int = 0, fill: str = "blur", **explain_options) -> dict:
    """Per image and on average: the predicted class's probability before, after deleting the
    most salient ``fraction`` of the view, and after deleting random ``fraction``s (mean over
    ``n_random`` draws, for both baselines)."""
    from .api import explain_one

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
        batch = [view.image]
        filler = _filler(view.image, fill, subject)
        for m in masks:
            img = view.image.copy()
            img[m] = filler[m]
            batch.append(img)
        p = subject.proba_views(np.stack(batch))[:, c]
        rows.append({"path": e.path, "class": e.target, "p": float(p[0]), "p_salient": float(p[1]),
                     "p_random_pixels": float(p[2:2 + n_random].mean()),
                     "p_random_blobs": float(p[2 + n_random:].mean())})
    drop = {k: float(np.mean([r["p"] - r[f"p_{k}"] for r in rows])) for k in ("salient", "random_pixels", "random_blobs")}
    wins = {k: float(np.mean([r["p_salient"] < r[f"p_{k}"] for r in rows])) for k in ("random_pixels", "random_blobs")}
    return {"method": method, "fraction": fraction, "fill": fill, "images": len(rows), "mean_drop": drop,
            "salient_beats_random": wins, "rows": rows}
