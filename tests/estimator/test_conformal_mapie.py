"""wordsight's LAC sets against MAPIE's (SplitConformalClassifier, prefit) on the same
probabilities: the same quantile rule and the same sets; wordsight keeps its own few lines because
a saved model answers any coverage later from stored scores (see estimator/conformal.py)."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from wordsight.estimator.conformal import Calibration, set_matrix

mapie = pytest.importorskip("mapie.classification")
K = 6


class Stored(ClassifierMixin, BaseEstimator):
    """A prefit 'estimator' whose probabilities are rows of ``P`` named by the first column of X."""

    def __init__(self, P=None):
        self.P = P

    def fit(self, X, y):
        self.classes_ = np.arange(K)
        return self

    def predict_proba(self, X):
        return self.P[np.asarray(X)[:, 0].astype(int)]

    def predict(self, X):
        return self.predict_proba(X).argmax(1)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("coverage", [0.8, 0.9, 0.95])
def test_lac_sets_equal_mapies(coverage):
    rng = np.random.default_rng(0)
    L = rng.normal(0, 2, (700, K))
    P = np.exp(L) / np.exp(L).sum(1, keepdims=True)
    y = np.array([rng.choice(K, p=p) for p in P])
    est = Stored(P).fit(None, None)
    m = mapie.SplitConformalClassifier(est, confidence_level=coverage, conformity_score="lac", prefit=True)
    m.conformalize(np.arange(400)[:, None], y[:400])
    want = m.predict_set(np.arange(400, 700)[:, None])[1][:, :, 0]
    got = set_matrix(P[400:], Calibration(L[:400], y[:400], 0), coverage, "lac")
    np.testing.assert_array_equal(got, want)
    assert 0.5 < got.sum(1).mean() < K
