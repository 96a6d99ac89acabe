"""A random forest (scikit-learn), kept as its trees' arrays and evaluated in numpy or torch."""
from __future__ import annotations

import numpy as np

from .base import Head, class_weights

# Added to every class's probability so that log-probabilities stay finite.
PROBA_FLOOR = 1e-9


class RandomForestHead(Head):
    """Trees as arrays (children, feature, threshold, leaf class distributions): no pickle."""

    name = "random_forest"
    differentiable = False

    def __init__(self, n_estimators=200, max_depth=None, class_weight=None, n_jobs=2, random_state=0):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.class_weight = class_weight
        self.n_jobs = n_jobs
        self.random_state = random_state

    @classmethod
    def state_arrays(cls, info):
        """Names of the arrays of the flattened trees (children, features, thresholds, leaf values)."""
        return ["children_left", "children_right", "feature", "threshold", "value", "offsets"]

    @property
    def n_classes(self) -> int:
        """Number of classes (width of the leaf values)."""
        return int(self.arrays["value"].shape[1])

    def state_problems(self, n_features, n_classes):
        """Nodes after their parent within their tree (so every walk ends), indices in range."""
        a = self.arrays
        off, n = a["offsets"], len(a["children_left"])
        if not (off.ndim == 1 and len(off) >= 2 and off[0] == 0 and off[-1] == n and bool((np.diff(off) > 0).all())):
            return [("offsets", "do not cut the nodes into trees")]
        for k in ("children_right", "feature", "threshold"):
            if len(a[k]) != n:
                return [(k, f"has {len(a[k])} nodes, not {n}")]
        if a["value"].ndim != 2 or a["value"].shape != (n, n_classes):
            return [("value", f"must be ({n}, {n_classes})")]
        local = np.arange(n) - np.repeat(off[:-1], np.diff(off))
        size = np.repeat(np.diff(off), np.diff(off))
        for k in ("children_left", "children_right"):
            c = a[k]
            if not bool(((c == -1) | ((c > local) & (c < size))).all()):
                return [(k, "points outside its tree or backwards")]
        leaf, f = a["children_left"] == -1, a["feature"]
        if not bool((leaf | ((f >= 0) & (f < n_features))).all()):
            return [("feature", f"indexes outside 0..{n_features - 1}")]
        return []

    def _fit(self, X, y, n_classes):
        from sklearn.ensemble import RandomForestClassifier

        cw = class_weights(y, n_classes, self.class_weight)
        model = RandomForestClassifier(n_estimators=self.n_estimators, max_depth=self.max_depth, class_weight=cw,
                                       n_jobs=self.n_jobs, random_state=self.random_state)
        model.fit(X, y)
        present = model.classes_
        left, right, feat, thr, value, offsets = [], [], [], [], [], [0]
        for est in model.estimators_:
            t = est.tree_
            v = t.value[:, 0, :]
            v = v / np.maximum(v.sum(1, keepdims=True), 1e-12)
            full = np.zeros((t.node_count, n_classes))
            full[:, present] = v
            left.append(t.children_left)
            right.append(t.children_right)
            feat.append(t.feature)
            thr.append(t.threshold)
            value.append(full)
            offsets.append(offsets[-1] + t.node_count)
        self.arrays.update(children_left=np.concatenate(left).astype(np.int64),
                           children_right=np.concatenate(right).astype(np.int64),
                           feature=np.concatenate(feat).astype(np.int64),
                           threshold=np.concatenate(thr).astype(np.float64),
                           value=np.concatenate(value), offsets=np.asarray(offsets, np.int64))
        return self

    def logits(self, X):
        """Log of the trees' mean leaf class frequencies for ``X`` (floored at ``PROBA_FLOOR``)."""
        X = np.asarray(X, np.float64)
        a = self.arrays
        offsets = a["offsets"]
        P = np.zeros((len(X), self.n_classes))
        rows = np.arange(len(X))
        for t in range(len(offsets) - 1):
            base = offsets[t]
            node = np.zeros(len(X), np.int64)
            while True:
                g = base + node
                leaf = a["children_left"][g] == -1
                if leaf.all():
                    break
                f = np.where(leaf, 0, a["feature"][g])
                go_left = X[rows, f] <= a["threshold"][g]
                node = np.where(leaf, node, np.where(go_left, a["children_left"][g], a["children_right"][g]))
            P += a["value"][base + node]
        P /= len(offsets) - 1
        P += PROBA_FLOOR
        return np.log(P / P.sum(1, keepdims=True))

    def depth(self) -> int:
        """The most steps from a root to a leaf over all trees."""
        a, off = self.arrays, self.arrays["offsets"]
        nodes, steps = off[:-1], 0
        while True:
            inner = nodes[a["children_left"][nodes] != -1]
            if not len(inner):
                return steps
            base = np.repeat(off[:-1], np.diff(off))[inner]
            nodes, steps = np.concatenate([base + a["children_left"][inner], base + a["children_right"][inner]]), steps + 1

    def to_torch(self):
        """The same walk down every tree in torch, all trees at once for :meth:`depth` steps (a
        leaf stays put), so the module has no data-dependent control flow and traces to ONNX. No
        gradients: a forest is piecewise constant."""
        import torch

        from .base import torch_arrays

        a, depth, n_trees = torch_arrays(self), self.depth(), len(self.arrays["offsets"]) - 1

        class Forest(torch.nn.Module):
            def __init__(self):
                super().__init__()
                for name, v in a.items():
                    self.register_buffer(name, v)

            def forward(self, X):
                base = self.offsets[:-1]
                node = X.new_zeros((X.shape[0], n_trees), dtype=torch.int64)  # (B, trees): each at its root
                for _ in range(depth):
                    g = base + node
                    leaf = self.children_left[g] == -1
                    f = torch.where(leaf, torch.zeros_like(node), self.feature[g])
                    go_left = X.gather(1, f) <= self.threshold[g]
                    node = torch.where(leaf, node, torch.where(go_left, self.children_left[g], self.children_right[g]))
                P = self.value[base + node].to(X.dtype).mean(1) + PROBA_FLOOR
                return torch.log(P / P.sum(1, keepdim=True))

        return Forest()
