"""Cosine k-nearest neighbours with distance-weighted votes (and class weights)."""
from __future__ import annotations

import numpy as np

from .base import Head, class_weights

# Votes are exp((similarity - 1) / VOTE_TEMPERATURE): the nearest neighbour counts most, and a
# neighbour 0.1 less similar counts e times less.
VOTE_TEMPERATURE = 0.1
# Added to every class's vote mass so that log-probabilities stay finite.
VOTE_FLOOR = 1e-6


class KNNHead(Head):
    """Keeps the L2-normalised training matrix; ``k`` (default 5) neighbours vote, each vote
    weighted by similarity and by the class weight of its label (``class_weight``)."""

    name = "knn"

    def __init__(self, k=5, class_weight=None):
        self.k = k
        self.class_weight = class_weight

    @classmethod
    def state_arrays(cls, info):
        """Names of the arrays a fitted kNN saves (training rows, their labels, class weights)."""
        return ["train", "labels", "class_weight"]

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return int(self.info["n_classes"])

    def state_problems(self, n_features, n_classes):
        """Problems of a loaded state: labels outside ``0..n_classes - 1``."""
        labels = self.arrays["labels"]
        if not bool(((labels >= 0) & (labels < n_classes)).all()):
            return [("labels", f"must be class indices in 0..{n_classes - 1}")]
        return []

    def _fit(self, X, y, n_classes):
        Xn = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        cw = class_weights(y, n_classes, self.class_weight)
        weights = (
            np.ones(n_classes) if cw is None else np.asarray([cw.get(c, 1.0) for c in range(n_classes)], np.float64)
        )
        self.arrays.update(train=Xn.astype(np.float64), labels=y.astype(np.int64), class_weight=weights)
        self.info.update(n_classes=int(n_classes), k=int(min(self.k, len(y))))
        return self

    def logits(self, X):
        """Log of the class-weighted, similarity-weighted vote of the ``k`` nearest training rows (cosine)."""
        X = np.asarray(X, np.float64)
        Xn = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        train = self.arrays["train"]
        # row by row: results must not depend on which other rows share the call
        sims = np.stack([train @ row for row in Xn]) if len(Xn) else np.zeros((0, len(train)))
        k = int(self.info["k"])
        idx = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        lab = self.arrays["labels"][idx]
        w = np.exp((np.take_along_axis(sims, idx, 1) - 1.0) / VOTE_TEMPERATURE) * self.arrays["class_weight"][lab]
        P = np.zeros((len(X), self.n_classes))
        np.add.at(P, (np.repeat(np.arange(len(X)), k), lab.ravel()), w.ravel())
        P += VOTE_FLOOR
        return np.log(P / P.sum(1, keepdims=True))

    def to_torch(self):
        """A torch module with the same neighbours, weights and ties (training order)."""
        import torch

        from ..._util.numerics import l2_normalize_torch
        from .base import torch_arrays

        a, k, n_classes = torch_arrays(self), int(self.info["k"]), self.n_classes

        class KNN(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.a = a  # plain tensors: "train" would shadow Module.train as a buffer

            def forward(self, X):
                sims = l2_normalize_torch(X) @ self.a["train"].T
                # a stable sort, as logits' argsort: tied neighbours (duplicate texts of paired-text
                # models) are taken in training order on both sides; torch's topk breaks ties its own
                # way, but traced to ONNX it is TopK, which takes ties in index order (and the
                # exporter cannot write a stable sort)
                if torch.jit.is_tracing():
                    top, idx = sims.topk(k, dim=1)
                else:
                    top, idx = sims.sort(dim=1, descending=True, stable=True)
                    top, idx = top[:, :k], idx[:, :k]
                lab = self.a["labels"][idx]
                votes = torch.exp((top - 1.0) / VOTE_TEMPERATURE) * self.a["class_weight"][lab]
                P = X.new_zeros((X.shape[0], n_classes)).scatter_add(1, lab, votes) + VOTE_FLOOR
                return torch.log(P / P.sum(1, keepdim=True))

        return KNN()
