"""Description selection: keep the class texts that separate their class from the others on images.

Each text ``t`` of class ``c`` is scored by how far its cosine similarity to the images of ``c``
stands above its similarity to the other images, in units of the similarity's spread
(a d-prime): ``(mean_{y=c} s_t - mean_{y!=c} s_t) / std(s_t)``, averaged over the ways into the
text space. ``y`` is a labelled image's class (support images), or, for unlabelled images, the
zero-shot classifier's own probabilities (pseudo-labels, weighted softly).

A text is kept (weight 1) when its score is positive and at least ``keep`` times the best score
of its class, else dropped (weight 0); every class keeps its best text. With labels on 1,000
Fashion-MNIST training images, ``keep=0.7`` gave the best training accuracy of {0, 0.3, 0.5,
0.7} (docs/benchmarks.md, "Descriptions that discriminate"); pseudo-labels lost 0.5-5 points there (the
classifier's own mistakes vote for the texts that made them), so they are opt-in.
"""
from __future__ import annotations

import numpy as np

from .._util.numerics import l2_normalize

DEFAULT_KEEP = 0.7


def separation_scores(text_embeddings, owner, images, targets) -> np.ndarray:
    """(T,) d-prime of each text for its own class.

    ``text_embeddings``: (T, D); ``owner``: (T,) class index of each text; ``images``: one (N, D)
    array, or a list of them (one per way into the text space: the scores are averaged), already
    centred as the classifier compares them; ``targets``: (N,) class indices or (N, C) class
    probabilities (rows of a one-hot or soft pseudo-labels).
    """
    E = np.asarray(text_embeddings, dtype=np.float64)
    owner = np.asarray(owner, dtype=np.int64)
    views = images if isinstance(images, (list, tuple)) else [images]
    t = np.asarray(targets)
    n = len(views[0])
    if t.ndim == 1:
        p = np.zeros((n, int(owner.max()) + 1 if len(owner) else 0))
        p[np.arange(n), t.astype(np.int64)] = 1.0
    else:
        p = np.asarray(t, dtype=np.float64)
    if len(p) != n or (len(owner) and p.shape[1] <= owner.max()):
        raise ValueError(f"targets of shape {np.shape(targets)} do not match {n} images and the text owners")
    pos = p[:, owner]                      # (N, T): how much each image belongs to each text's class
    neg = 1.0 - pos
    scores = np.zeros(len(E))
    for X in views:
        S = l2_normalize(np.asarray(X, dtype=np.float64)) @ E.T  # (N, T)
        mean_pos = (pos * S).sum(0) / np.maximum(pos.sum(0), 1e-12)
        mean_neg = (neg * S).sum(0) / np.maximum(neg.sum(0), 1e-12)
        scores += (mean_pos - mean_neg) / np.maximum(S.std(0), 1e-12)
    return scores / len(views)


def selection_weights(scores, owner, keep: float = DEFAULT_KEEP) -> np.ndarray:
    """(T,) weights: 1 for a text whose score is positive and at least ``keep`` times the best
    score of its class, else 0; the best text of every class is always kept."""
    scores = np.asarray(scores, dtype=np.float64)
    owner = np.asarray(owner, dtype=np.int64)
    w = np.zeros(len(scores))
    for c in np.unique(owner):
        idx = np.flatnonzero(owner == c)
        best = scores[idx].max()
        w[idx] = (scores[idx] > 0) & (scores[idx] >= keep * best)
        w[idx[np.argmax(scores[idx])]] = 1.0
    return w
