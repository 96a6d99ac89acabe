"""Mixing a zero-shot language prior into a trained head, with choices made on training data only.

The mixed prediction is ``log_softmax(head logits) + weight * log_softmax(t * prior logits)``:
weight 0 is the image-only head. The prior's temperature ``t`` is fitted on the training images
(the zero-shot classifier never saw them, so its predictions on them are honest held-out ones).
The weight is chosen by cross-validation on the training images alone: "leave one shot out" folds
(fold j holds out the j-th image of every class, so every class keeps k-1 images) give the head's
held-out predictions. With one image per class no fold keeps every class; the held-out images are
then augmented views of the training images (an optimistic stand-in for new images, so the
chosen weight errs towards the image head). Ties go to the smaller weight: the prior must earn
its place, and weight 0 (image-only) is always a candidate.
"""
from __future__ import annotations

import numpy as np

from .heads import fit_temperature, log_softmax

WEIGHT_GRID = (0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


def mix(head_logits: np.ndarray, prior_logits: np.ndarray, weight: float, temperature: float) -> np.ndarray:
    """Log-probabilities (unnormalised logits) of the mixed prediction."""
    if weight == 0:
        return log_softmax(head_logits)
    return log_softmax(head_logits) + weight * log_softmax(temperature * prior_logits)


def leave_one_shot_out_folds(y: np.ndarray, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds that each hold out one image of every class (classes with fewer images than folds
    stay in training); empty when some class has a single image."""
    counts = np.bincount(y)
    counts = counts[counts > 0]
    k = int(counts.min()) if len(counts) else 0
    if k < 2:
        return []
    n_folds = min(k, 5)
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), np.int64)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        fold_of[idx] = np.arange(len(idx)) % n_folds
    return [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)) for f in range(n_folds)]


def choose_weight(held_head_logits: np.ndarray, held_prior_logits: np.ndarray, y: np.ndarray,
                  temperature: float, grid=WEIGHT_GRID) -> tuple[float, dict]:
    """The weight with the best held-out accuracy (ties: lower log-loss, then smaller weight)."""
    scores = {}
    for w in grid:
        z = mix(held_head_logits, held_prior_logits, w, temperature)
        lp = log_softmax(z)
        acc = float(np.mean(z.argmax(1) == y))
        nll = float(-lp[np.arange(len(y)), y].mean())
        scores[float(w)] = (acc, nll)
    best = max(scores, key=lambda w: (round(scores[w][0], 9), -round(scores[w][1], 6), -w))
    return best, {str(w): {"accuracy": a, "log_loss": n} for w, (a, n) in scores.items()}


def prior_temperature(prior_logits: np.ndarray, y: np.ndarray) -> float:
    return fit_temperature(prior_logits, y)
