"""SHAP on superpixels (Lundberg & Lee 2017, the ``shap`` package's kernel explainer) for any model.

The players are the SLIC superpixels of the model's view (the same cut as LIME's); a coalition
keeps its superpixels and fills the others with the encoder's mean colour (model input zero), and
the value of a coalition is the model's own probability of the explained class on that view. The
kernel explainer samples coalitions with the Shapley kernel's weights and solves the weighted
regression whose coefficients are the Shapley values: they add up to p(image) - p(all hidden).
``max_evals`` bounds the cost: that many model calls at most (batched), the two reference
coalitions (everything kept, everything hidden) included; a small budget gets fewer, larger
superpixels (at most one per ``SAMPLES_PER_PLAYER`` calls) so that the regression stays determined.
"""
from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np

from ._pipeline import Subject, View
from .superpixels import DEFAULT_SEGMENTS, segments

DEFAULT_EVALS = 200
MIN_EVALS = 10
SAMPLES_PER_PLAYER = 4
MIN_SEGMENTS = 4


@contextlib.contextmanager
def _seeded(seed: int):
    """The kernel explainer draws coalitions from numpy's global generator: seed it for the call
    and give the caller's state back afterwards."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def compose(view: np.ndarray, segs: np.ndarray, keep: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8: ``view`` with, for each row of ``keep`` (N, n_superpixels) in {0, 1},
    the superpixels marked 0 filled with ``fill``."""
    keep = np.asarray(keep) > 0.5
    kept = keep[:, segs]  # (N, S, S)
    return np.where(kept[..., None], view[None], np.asarray(fill, np.uint8)[None, None, None]).astype(np.uint8)


def shap_map(subject: Subject, view: View, target: int, max_evals: int = DEFAULT_EVALS,
             n_segments: int = DEFAULT_SEGMENTS, batch_size: int = 32, random_state: int = 0):
    """(signed map over the view (S, S), each pixel carrying its superpixel's Shapley value,
    scaled so the largest absolute value is 1; facts: the model calls made, superpixels, p(view),
    p(all hidden), the sum of the values before scaling)."""
    try:
        with warnings.catch_warnings():  # shap 0.51 warns about matplotlib colour maps on import
            warnings.simplefilter("ignore")
            import shap
    except ImportError as e:  # pragma: no cover - optional extra
        raise RuntimeError(f"method='shap' needs the shap package ({e}): pip install 'wordsight[explain]'") from None
    if int(max_evals) < MIN_EVALS:
        raise ValueError(f"max_evals must be at least {MIN_EVALS}, not {max_evals}")
    # at least SAMPLES_PER_PLAYER coalitions per superpixel: with fewer samples than players the
    # kernel regression is underdetermined (measured: 40 superpixels on 40 calls gave maps that
    # lost to random blobs in the deletion check)
    segs = segments(view.image, max(MIN_SEGMENTS, min(n_segments, (int(max_evals) - 2) // SAMPLES_PER_PLAYER)))
    n = int(segs.max()) + 1
    fill = subject.fill_colour()
    calls = {"images": 0, "first": None}

    def value(keep: np.ndarray) -> np.ndarray:
        keep = np.atleast_2d(keep)
        calls["images"] += len(keep)
        # composed a batch at a time: the explainer asks for all its coalitions at once (10,000
        # views of 224 x 224 would be 1.5 GB), and a deadline is checked between batches
        p = np.concatenate([subject.proba_views(compose(view.image, segs, keep[i:i + batch_size], fill), batch_size)
                            for i in range(0, len(keep), batch_size)])
        if calls["first"] is None and keep.all():
            calls["first"] = p[0]
        return p[:, target]

    explainer = shap.KernelExplainer(value, np.zeros((1, n)), link="identity")  # one call: all hidden
    # kernel SHAP spends two calls on the references: the rest is the coalition budget
    with _seeded(random_state), warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        values = np.asarray(explainer.shap_values(np.ones((1, n)), nsamples=int(max_evals) - 2, l1_reg=False,
                                                  silent=True), np.float64).reshape(-1)[:n]
    p_hidden = float(np.asarray(explainer.expected_value).reshape(-1)[0])
    proba = calls["first"]
    if proba is None:  # pragma: no cover - the kernel explainer always scores the full image
        proba = subject.proba_views(view.image[None], batch_size)[0]
        calls["images"] += 1
    scale = float(np.abs(values).max()) or 1.0
    m = (values / scale)[segs].astype(np.float32)
    facts = {"model_calls": int(calls["images"]), "max_evals": int(max_evals), "superpixels": n,
             "p_view": float(proba[target]), "p_hidden": p_hidden, "sum_of_values": float(values.sum()),
             "explainer": "kernel"}
    return m, facts
