"""Anomaly scorers on L2-normalised feature rows: ``distance(Q)`` (higher = more abnormal) and a
held-out distance of every training row (to calibrate a threshold on normal images only).

``patchcore`` (:mod:`.patchcore`) reads patch grids rather than pooled rows (``reads``).

``knn`` (DN2, Bergman et al. 2020): mean cosine distance to the ``k`` nearest normal rows, searched
exactly in batches of queries, so memory is bounded by ``batch x n_normal``; its held-out distances
are leave-one-out (each row's own match left out). ``mahalanobis``: distance to the normal mean under
a Ledoit-Wolf covariance; held-out distances from 5 cross-fitted folds.
"""
from __future__ import annotations

import numpy as np

QUERY_BATCH = 1024  # query rows per similarity block: memory is QUERY_BATCH x n_normal floats


class KnnScorer:
    """Mean cosine distance to the ``k`` nearest normal rows (``bank``: L2-normalised, float32)."""

    name = "knn"
    reads = "pooled"

    def __init__(self, k: int = 2, **_):
        self.k = int(k)

    @staticmethod
    def shapes(config: dict) -> dict:
        return {"bank": (config["n_train"], config["n_features"])}

    def fit(self, Z: np.ndarray) -> "KnnScorer":
        self.bank = np.ascontiguousarray(Z, np.float32)
        return self

    def _nearest_sims(self, Q: np.ndarray, n: int, exclude_self: bool) -> np.ndarray:
        out = np.empty((len(Q), n), np.float32)
        for lo in range(0, len(Q), QUERY_BATCH):
            S = Q[lo:lo + QUERY_BATCH].astype(np.float32) @ self.bank.T
            if exclude_self:
                S[np.arange(len(S)), np.arange(lo, lo + len(S))] = -np.inf
            out[lo:lo + len(S)] = -np.partition(-S, n - 1, axis=1)[:, :n]
        return out

    def distance(self, Q: np.ndarray) -> np.ndarray:
        return 1.0 - self._nearest_sims(Q, self.k, False).mean(1).astype(np.float64)

    def held_out_distance(self) -> np.ndarray:
        return 1.0 - self._nearest_sims(self.bank, self.k, True).mean(1).astype(np.float64)

    def state(self) -> dict:
        return {"bank": self.bank}

    def set_state(self, arrays: dict) -> "KnnScorer":
        self.bank = np.ascontiguousarray(arrays["bank"], np.float32)
        return self


class MahalanobisScorer:
    """Mahalanobis distance to the normal rows' mean, Ledoit-Wolf shrunk covariance."""

    name = "mahalanobis"
    reads = "pooled"
    folds = 5

    def __init__(self, k: int = 2, **_):  # k unused: one signature for every scorer
        self.k = int(k)

    @staticmethod
    def shapes(config: dict) -> dict:
        d = config["n_features"]
        return {"mean": (d,), "precision": (d, d)}

    def fit(self, Z: np.ndarray) -> "MahalanobisScorer":
        from sklearn.covariance import LedoitWolf

        self._Z = np.asarray(Z, np.float64)
        lw = LedoitWolf(store_precision=False).fit(self._Z)  # shrunk: positive definite, so inv (not pinvh)
        self.mean, self.precision = lw.location_, np.linalg.inv(lw.covariance_)
        return self

    def distance(self, Q: np.ndarray) -> np.ndarray:
        D = np.asarray(Q, np.float64) - self.mean
        return np.sqrt(np.maximum(((D @ self.precision) * D).sum(1), 0.0))

    def held_out_distance(self) -> np.ndarray:
        n = len(self._Z)
        fold = np.arange(n) % min(self.folds, n)
        out = np.empty(n)
        for f in np.unique(fold):
            out[fold == f] = MahalanobisScorer().fit(self._Z[fold != f]).distance(self._Z[fold == f])
        return out

    def state(self) -> dict:
        return {"mean": self.mean, "precision": self.precision}

    def set_state(self, arrays: dict) -> "MahalanobisScorer":
        self.mean, self.precision = np.asarray(arrays["mean"], np.float64), np.asarray(arrays["precision"], np.float64)
        return self


from .patchcore import PatchCoreScorer  # noqa: E402  (it imports nothing from here)

SCORERS = {c.name: c for c in (KnnScorer, MahalanobisScorer, PatchCoreScorer)}
