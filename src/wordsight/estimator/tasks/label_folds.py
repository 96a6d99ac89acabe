"""Out-of-fold probabilities of a multi-label head on its training rows (for the thresholds)."""
from __future__ import annotations

import numpy as np

from ..._util.numerics import sigmoid


def out_of_fold_proba(head, M, Y, max_folds: int, random_state=0) -> tuple[np.ndarray, int]:
    """Each training row's probabilities from a clone of the fitted ``head`` (its searched
    parameters fixed) fitted on the other folds. Plain ``KFold`` (shuffled, seeded): stratifying
    on every label at once has no scikit-learn splitter; a label absent from a fold's training
    rows gets that head's constant score there."""
    from sklearn.base import clone
    from sklearn.model_selection import KFold

    M, Y = np.asarray(M, np.float64), np.asarray(Y)
    folds = min(max_folds, len(Y))
    params = head.get_params()
    fixed = {k: v for k, v in head.info.items() if k in params and params[k] is None}
    proba = np.empty(Y.shape, np.float64)
    seed = random_state if isinstance(random_state, int) else 0
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(M):
        part = clone(head).set_params(**fixed).fit(M[train], Y[train], Y.shape[1])
        proba[test] = sigmoid(part.logits(M[test]))
    return proba, folds
