"""Out-of-fold probabilities of a multi-label head on its training rows (for the thresholds)."""
from __future__ import annotations

import numpy as np

from ..._util.numerics import sigmoid


def out_of_fold_proba(head, M, Y, max_folds: int, random_state=0) -> tuple[np.ndarray, int]:
    """Each training row's probabilities from a clone of the fitted ``head`` fitted on the other
    folds with its :meth:`~..heads.base.Head.fold_params` (its searched parameters fixed; a linear
    head's ``C`` scaled to the fold's size, as the conformal fold heads are). Plain ``KFold`` (shuffled, seeded): stratifying
    on every label at once has no scikit-learn splitter; a label absent from a fold's training
    rows gets that head's constant score there."""
    from sklearn.base import clone
    from sklearn.model_selection import KFold

    M, Y = np.asarray(M, np.float64), np.asarray(Y)
    folds = min(max_folds, len(Y))
    proba = np.empty(Y.shape, np.float64)
    seed = random_state if isinstance(random_state, int) else 0
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(M):
        part = clone(head).set_params(**head.fold_params(len(Y), len(train))).fit(M[train], Y[train], Y.shape[1])
        proba[test] = sigmoid(part.logits(M[test]))
    return proba, folds
