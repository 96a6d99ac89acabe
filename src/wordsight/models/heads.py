"""Classifier heads: learn on fused feature arrays, predict with plain numpy from learned arrays.

Every head is fitted with scikit-learn (or a few lines of numpy) and then keeps only its learned
arrays; ``predict_proba`` runs on those arrays, so a head rebuilt from a saved folder (safetensors,
no pickle) predicts exactly what the fitted one did. A head never sees an image.
"""
from __future__ import annotations

import warnings

import numpy as np

HEADS = ("logistic", "svm", "mlp", "knn", "random_forest")
# The CLIP linear-probe protocol searches the inverse penalty over a wide log grid.
DEFAULT_C_GRID = tuple(float(c) for c in np.logspace(-4, 2, 7))


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def _cv_folds(y: np.ndarray, max_folds: int = 3) -> int:
    """Stratified folds possible on ``y`` (0 when a class has fewer than two samples)."""
    counts = np.bincount(y)
    counts = counts[counts > 0]
    n = int(min(max_folds, counts.min())) if len(counts) > 1 else 0
    return n if n >= 2 else 0


class Head:
    """Base: ``fit(X, y_idx, n_classes)``, ``logits(X)``, ``to_arrays()``/``from_arrays()``."""

    name = ""

    def __init__(self, **params):
        self.params = params
        self.arrays: dict[str, np.ndarray] = {}
        self.info: dict = {}

    def fit(self, X: np.ndarray, y: np.ndarray, n_classes: int) -> "Head":
        """Learn from ``X`` (N, F) and class indices ``y`` (N,) in ``range(n_classes)``."""
        from threadpoolctl import threadpool_limits

        # One BLAS thread: these problems are small, and on a busy 2-core machine multi-threaded
        # BLAS spin-waits made logistic regression 20x slower (9 s -> 0.5 s for 600 x 1280).
        with threadpool_limits(1, user_api="blas"):
            return self._fit(np.asarray(X, np.float64), np.asarray(y, np.int64), int(n_classes))

    def logits(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return softmax(self.logits(X))

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict]:
        return {k: np.ascontiguousarray(v) for k, v in self.arrays.items()}, dict(self.info)

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], info: dict, params: dict) -> "Head":
        head = cls(**params)
        head.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        head.info = dict(info)
        return head

    def _standardise(self, X):
        return (X - self.arrays["mean"]) / self.arrays["scale"]

    def _fit_scaler(self, X):
        # Centre each feature but scale all by one number: per-feature standard deviations from
        # a few images are noise (k=1 Fashion-MNIST: 45% with them, 55-63% with one global scale).
        mean = X.mean(0)
        overall = float(np.sqrt(np.mean((X - mean) ** 2)))
        scale = np.full(X.shape[1], overall if overall > 1e-12 else 1.0)
        self.arrays["mean"], self.arrays["scale"] = mean.astype(np.float64), scale.astype(np.float64)
        return self._standardise(X)


def _class_weight(y, n_classes, class_weight):
    if class_weight is None:
        return None
    if class_weight == "balanced":
        counts = np.bincount(y, minlength=n_classes).astype(float)
        return {c: len(y) / (n_classes * counts[c]) for c in range(n_classes) if counts[c]}
    return class_weight


class LinearHead(Head):
    """A linear map over standardised features: logits = ((X - mean) / scale) @ coef.T + intercept.

    ``linear()`` folds the standardisation in: logits = X @ W.T + b (for explanations in torch).
    """

    def logits(self, X):
        z = self._standardise(X) @ self.arrays["coef"].T + self.arrays["intercept"]
        return z * float(self.info.get("temperature", 1.0))

    def linear(self) -> tuple[np.ndarray, np.ndarray]:
        t = float(self.info.get("temperature", 1.0))
        coef, scale, mean = self.arrays["coef"], self.arrays["scale"], self.arrays["mean"]
        W = coef / scale
        b = self.arrays["intercept"] - W @ mean
        return W * t, b * t

    def _search_and_fit(self, X, y, n_classes, make, default_grid):
        """Scale, choose C by cross-validation over the grid (or take the given C), refit on all.
        ``make(c, class_weight, seed)`` builds the scikit-learn estimator."""
        Xs = self._fit_scaler(X)
        cw = _class_weight(y, n_classes, self.params.get("class_weight"))
        seed = self.params.get("random_state", 0)
        C = self.params.get("C")
        grid = tuple(C) if isinstance(C, (list, tuple)) else ((float(C),) if C is not None else default_grid)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings at extreme C on tiny folds
            best, scores = self._choose_c(Xs, y, lambda c: make(c, cw, seed), grid)
            model = make(best, cw, seed).fit(Xs, y)
        return model, best, scores

    def _choose_c(self, Xs, y, make, grid):
        folds = _cv_folds(y)
        if len(grid) == 1 or folds == 0:
            return float(grid[len(grid) // 2] if folds == 0 and len(grid) > 1 else grid[0]), {}
        from sklearn.model_selection import StratifiedKFold

        seed = self.params.get("random_state", 0)
        splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(Xs, y))
        scores = {}
        for c in grid:
            acc = []
            for tr, va in splits:
                if len(np.unique(y[tr])) < 2:
                    continue
                m = make(c).fit(Xs[tr], y[tr])
                acc.append(np.mean(m.predict(Xs[va]) == y[va]))
            scores[c] = float(np.mean(acc)) if acc else 0.0
        best = max(grid, key=lambda c: (round(scores[c], 6), -abs(np.log10(c))))  # ties: milder C
        return float(best), {str(k): v for k, v in scores.items()}


class LogisticHead(LinearHead):
    name = "logistic"

    def _fit(self, X, y, n_classes):
        from sklearn.linear_model import LogisticRegression

        def make(c, cw, seed):
            return LogisticRegression(C=c, max_iter=self.params.get("max_iter", 1000), class_weight=cw,
                                      random_state=seed)

        model, best, scores = self._search_and_fit(X, y, n_classes, make, DEFAULT_C_GRID)
        coef = np.zeros((n_classes, X.shape[1]))
        intercept = np.full(n_classes, -1e3)  # classes absent from training get no probability
        present = model.classes_
        if len(present) == 2:  # binary: sklearn keeps one row, the log-odds of the second class
            coef[present[1]], intercept[present[1]] = model.coef_[0], model.intercept_[0]
            intercept[present[0]] = 0.0
        else:
            coef[present], intercept[present] = model.coef_, model.intercept_
        self.arrays.update(coef=coef, intercept=intercept)
        self.info.update(C=best, cv_accuracy=scores)
        return self


class SVMHead(LinearHead):
    """Linear SVM (one-vs-rest); decision values become probabilities by a softmax whose
    temperature is fitted on the training decisions."""

    name = "svm"

    def _fit(self, X, y, n_classes):
        from sklearn.svm import LinearSVC

        def make(c, cw, seed):
            return LinearSVC(C=c, class_weight=cw, random_state=seed, max_iter=5000)

        model, best, scores = self._search_and_fit(X, y, n_classes, make, DEFAULT_C_GRID[:5])
        coef = np.zeros((n_classes, X.shape[1]))
        intercept = np.full(n_classes, -1e3)
        present = model.classes_
        if len(present) == 2:
            coef[present[1]], intercept[present[1]] = model.coef_[0], model.intercept_[0]
            coef[present[0]], intercept[present[0]] = -model.coef_[0], -model.intercept_[0]
        else:
            coef[present], intercept[present] = model.coef_, model.intercept_
        self.arrays.update(coef=coef, intercept=intercept)
        self.info.update(C=best, cv_accuracy=scores, temperature=1.0)
        self.info["temperature"] = fit_temperature(LinearHead.logits(self, X), y)
        return self


def fit_temperature(logits: np.ndarray, y: np.ndarray, grid=None) -> float:
    """The scale t minimising the negative log-likelihood of softmax(t * logits)."""
    grid = np.logspace(-2, 2, 41) if grid is None else grid
    nll = [-log_softmax(t * logits)[np.arange(len(y)), y].mean() for t in grid]
    return float(grid[int(np.argmin(nll))])


class MLPHead(Head):
    """One or more ReLU layers (scikit-learn's MLPClassifier), run in numpy after fitting."""

    name = "mlp"

    def _fit(self, X, y, n_classes):
        from sklearn.neural_network import MLPClassifier

        Xs = self._fit_scaler(X)
        hidden = tuple(self.params.get("hidden", (256,)))
        early = len(y) >= 200 and _cv_folds(y, 10) >= 10
        model = MLPClassifier(hidden_layer_sizes=hidden, alpha=self.params.get("alpha", 1e-3),
                              max_iter=self.params.get("max_iter", 300), early_stopping=early,
                              random_state=self.params.get("random_state", 0))
        cw = _class_weight(y, n_classes, self.params.get("class_weight"))
        sw = None if cw is None else np.asarray([cw.get(c, 1.0) for c in y], np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(Xs, y, sample_weight=sw) if sw is not None else model.fit(Xs, y)
        present = model.classes_
        for i, (w, b) in enumerate(zip(model.coefs_, model.intercepts_)):
            last = i == len(model.coefs_) - 1
            if last:
                if len(present) == 2:  # logistic output unit: logits (0, z)
                    w = np.concatenate([np.zeros_like(w), w], 1)
                    b = np.concatenate([np.zeros_like(b), b])
                W = np.zeros((w.shape[0], n_classes))
                B = np.full(n_classes, -1e3)
                W[:, present], B[present] = w, b
                w, b = W, B
            self.arrays[f"w{i}"], self.arrays[f"b{i}"] = w, b
        self.info["layers"] = len(model.coefs_)
        return self

    def logits(self, X):
        h = self._standardise(X)
        n = int(self.info["layers"])
        for i in range(n):
            h = h @ self.arrays[f"w{i}"] + self.arrays[f"b{i}"]
            if i < n - 1:
                h = np.maximum(h, 0)
        return h


class KNNHead(Head):
    """Cosine k-nearest neighbours, distance-weighted votes; keeps the training matrix."""

    name = "knn"

    def _fit(self, X, y, n_classes):
        Xn = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        cw = _class_weight(y, n_classes, self.params.get("class_weight"))
        weights = np.ones(n_classes) if cw is None else np.asarray([cw.get(c, 1.0) for c in range(n_classes)], np.float64)
        self.arrays.update(train=Xn.astype(np.float64), labels=y.astype(np.int64), class_weight=weights)
        self.info.update(n_classes=int(n_classes), k=int(min(self.params.get("k", 5), len(y))))
        return self

    def predict_proba(self, X):
        Xn = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        # row by row: results must not depend on which other rows share the call
        sims = np.stack([self.arrays["train"] @ row for row in Xn.astype(np.float64)]) if len(Xn) else np.zeros((0, len(self.arrays["train"])))
        k = int(self.info["k"])
        idx = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        lab = self.arrays["labels"][idx]
        # softmax-like weights (temperature 0.1) times the class weights
        w = np.exp((np.take_along_axis(sims, idx, 1) - 1.0) / 0.1) * self.arrays["class_weight"][lab]
        P = np.zeros((len(X), int(self.info["n_classes"])))
        np.add.at(P, (np.repeat(np.arange(len(X)), k), lab.ravel()), w.ravel())
        P += 1e-6
        return P / P.sum(1, keepdims=True)

    def logits(self, X):
        return np.log(self.predict_proba(X))


class RandomForestHead(Head):
    """scikit-learn's random forest, kept as its trees' arrays (children, feature, threshold,
    leaf class distributions) and evaluated in numpy."""

    name = "random_forest"

    def _fit(self, X, y, n_classes):
        from sklearn.ensemble import RandomForestClassifier

        cw = _class_weight(y, n_classes, self.params.get("class_weight"))
        model = RandomForestClassifier(n_estimators=self.params.get("n_estimators", 200),
                                       max_depth=self.params.get("max_depth"), class_weight=cw,
                                       n_jobs=self.params.get("n_jobs", 2),
                                       random_state=self.params.get("random_state", 0))
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

    def predict_proba(self, X):
        a = self.arrays
        offsets = a["offsets"]
        P = np.zeros((len(X), a["value"].shape[1]))
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
                nxt = np.where(go_left, a["children_left"][g], a["children_right"][g])
                node = np.where(leaf, node, nxt)
            P += a["value"][base + node]
        P /= len(offsets) - 1
        P += 1e-9
        return P / P.sum(1, keepdims=True)

    def logits(self, X):
        return np.log(self.predict_proba(X))


_HEAD_CLASSES = {c.name: c for c in (LogisticHead, SVMHead, MLPHead, KNNHead, RandomForestHead)}


def make_head(name: str, **params) -> Head:
    if name not in _HEAD_CLASSES:
        raise ValueError(f"unknown head {name!r}: choose one of {', '.join(HEADS)}")
    return _HEAD_CLASSES[name](**params)


def head_class(name: str) -> type[Head]:
    if name not in _HEAD_CLASSES:
        raise ValueError(f"unknown head {name!r}: choose one of {', '.join(HEADS)}")
    return _HEAD_CLASSES[name]
