"""LIME on superpixels (Ribeiro et al. 2016, the ``lime`` package) for any wordsight model.

The image is cut into SLIC superpixels on the model's view (what the encoder sees, a few hundred
pixels a side, so segmentation is fast); LIME hides random subsets of them (filled with the
encoder's mean colour: model input zero), scores each perturbed view with the model's own
prediction code, and fits a weighted linear model whose coefficients are the superpixels'
evidence for the class. ``num_samples`` bounds the cost: one model call per sample, batched.
"""
from __future__ import annotations

import contextlib
import io

import numpy as np

from ._pipeline import Subject, View

DEFAULT_SAMPLES = 200
DEFAULT_SEGMENTS = 40


def segments(image: np.ndarray, n_segments: int = DEFAULT_SEGMENTS) -> np.ndarray:
    from skimage.segmentation import slic

    return slic(image, n_segments=n_segments, compactness=10, start_label=0)


def lime_map(subject: Subject, view: View, target: int, num_samples: int = DEFAULT_SAMPLES,
             n_segments: int = DEFAULT_SEGMENTS, batch_size: int = 32, random_state: int = 0):
    """(signed map over the view (S, S) where each pixel carries its superpixel's LIME weight,
    scaled so the largest absolute weight is 1; facts about the fit: R^2 of the local linear
    model, superpixels, samples)."""
    try:
        from lime import lime_image
    except ImportError as e:  # pragma: no cover - optional extra
        raise RuntimeError(f"method='lime' needs the lime package ({e}): pip install 'wordsight[explain]'") from None
    if int(num_samples) < 10:
        raise ValueError(f"num_samples must be at least 10, not {num_samples}")
    segs = segments(view.image, n_segments)

    def classify(images: np.ndarray) -> np.ndarray:
        return subject.proba_views(np.asarray(images, np.uint8), batch_size)

    explainer = lime_image.LimeImageExplainer(random_state=random_state)
    with contextlib.redirect_stderr(io.StringIO()):  # lime draws a progress bar it cannot be told to hide
        expl = explainer.explain_instance(
            view.image, classify, labels=(target,), top_labels=None, hide_color=subject.fill_colour(),
            num_features=int(segs.max()) + 1, num_samples=int(num_samples), batch_size=batch_size,
            segmentation_fn=lambda _img: segs, random_seed=random_state)
    weights = np.zeros(int(segs.max()) + 1)
    for seg, w in expl.local_exp[target]:
        weights[seg] = w
    scale = float(np.abs(weights).max()) or 1.0
    m = (weights / scale)[segs].astype(np.float32)
    facts = {"fit_r2": float(expl.score), "superpixels": int(len(weights)), "samples": int(num_samples)}
    return m, facts
