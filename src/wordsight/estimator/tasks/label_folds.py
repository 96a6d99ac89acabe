"""Out-of-fold probabilities of a multi-label head on its training rows (for the thresholds)."""
from __future__ import annotations

import numpy as np

from ..._util.numerics import sigmoid


def fold_splits(n: int, max_folds: int, random_state=0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) row indices of ``min(max_folds, n)`` shuffled, seeded ``KFold`` folds. Plain
    ``KFold``: stratifying on every label at once has no scikit-learn splitter."""
    from sklearn.model_selection import KFold

    seed = random_state if isinstance(random_state, int) else 0
    return list(KFold(min(max_folds, n), shuffle=True, random_state=seed).split(np.zeros((n, 1))))


def out_of_fold_proba(head, M, Y, splits) -> np.ndarray:
    """Each training row's probabilities from a clone of the fitted ``head`` fitted on the other
    folds (``splits``, :func:`fold_splits`) with its :meth:`~..heads.base.Head.fold_params` (its
    searched parameters fixed; a linear head's ``C`` scaled to the fold's size, as the conformal
    fold heads are); a label absent from a fold's training rows gets that head's constant score there."""
    from sklearn.base import clone

    M, Y = np.asarray(M, np.float64), np.asarray(Y)
    proba = np.empty(Y.shape, np.float64)
    for train, test in splits:
        part = clone(head).set_params(**head.fold_params(len(Y), len(train))).fit(M[train], Y[train], Y.shape[1])
        proba[test] = sigmoid(part.logits(M[test]))
    return proba
