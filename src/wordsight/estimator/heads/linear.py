"""Linear heads: logistic regression and a linear SVM, with the penalty C chosen by cross-validation.

Both keep ``coef``/``intercept`` over standardised features, and predict
``logits = temperature * (((X - mean) / scale) @ coef.T + intercept)``; :meth:`LinearHead.linear`
folds the standardisation and temperature in (``X @ W.T + b``), which the torch form uses.
"""
from __future__ import annotations

import warnings
from numbers import Real

import numpy as np
from sklearn.utils._param_validation import Interval

from ..._util.numerics import log_softmax
from .base import Head, class_weights

# The CLIP linear-probe protocol searches the inverse penalty over a wide log grid.
DEFAULT_C_GRID = tuple(float(c) for c in np.logspace(-4, 2, 7))


def fit_temperature(logits: np.ndarray, y: np.ndarray, grid=None) -> float:
    """The scale t minimising the negative log-likelihood of softmax(t * logits)."""
    grid = np.logspace(-2, 2, 41) if grid is None else grid
    nll = [-log_softmax(t * logits)[np.arange(len(y)), y].mean() for t in grid]
    return float(grid[int(np.argmin(nll))])


def _cv_folds(y: np.ndarray, max_folds: int = 3) -> int:
    """Stratified folds possible on ``y`` (0 when a class has fewer than two samples)."""
    counts = np.bincount(y)
    counts = counts[counts > 0]
    n = int(min(max_folds, counts.min())) if len(counts) > 1 else 0
    return n if n >= 2 else 0


class LinearHead(Head):
    """A linear map over standardised features (see the module doc). ``C``: the inverse penalty
    (None: cross-validated over the head's log grid; a sequence: that grid); ``class_weight``:
    None, "balanced" or a dict; ``random_state``: the folds' and the solver's seed."""

    _parameter_constraints = {**Head._parameter_constraints,
                              "C": [Interval(Real, 0, None, closed="neither"), tuple, list, None]}

    def __init__(self, C=None, class_weight=None, random_state=0):
        self.C = C
        self.class_weight = class_weight
        self.random_state = random_state

    @classmethod
    def state_arrays(cls, info):
        """Names of the arrays a fitted linear head saves."""
        return ["mean", "scale", "coef", "intercept"]

    @property
    def n_classes(self) -> int:
        """Number of classes (rows of ``coef``)."""
        return int(self.arrays["coef"].shape[0])

    def logits(self, X):
        """Temperature-scaled class scores of standardised ``X``: ``T * (z(X) @ coef.T + intercept)``."""
        z = self._standardise(np.asarray(X, np.float64)) @ self.arrays["coef"].T + self.arrays["intercept"]
        return z * float(self.info.get("temperature", 1.0))

    def linear(self) -> tuple[np.ndarray, np.ndarray]:
        """(W (n_classes, F), b (n_classes,)) with logits = X @ W.T + b."""
        t = float(self.info.get("temperature", 1.0))
        W = self.arrays["coef"] / self.arrays["scale"]
        b = self.arrays["intercept"] - W @ self.arrays["mean"]
        return W * t, b * t

    def to_torch(self):
        """A ``torch.nn.Linear``-like module giving the same logits (standardisation folded into W, b)."""
        import torch

        W, b = self.linear()

        class Linear(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("W", torch.from_numpy(np.ascontiguousarray(W, np.float64)))
                self.register_buffer("b", torch.from_numpy(np.ascontiguousarray(b, np.float64)))

            def forward(self, X):
                return X @ self.W.T + self.b

        return Linear()

    def fold_params(self, n_all: int, n_fold: int) -> dict:
        """The chosen ``C`` times ``n_all / n_fold``: scikit-learn's objective is ``C x (sum of the
        losses) + penalty``, so a fold head with the same C on fewer images is regularised more per
        image and less confident than the head fitted on all; scaled, its penalty per image is the
        final head's (measured: benchmarks/open_set_fashion_mnist.py, docs/benchmarks.md)."""
        return {**super().fold_params(n_all, n_fold), "C": float(self.info["C"]) * n_all / n_fold}

    def _store(self, model, n_features: int, n_classes: int, symmetric_binary: bool) -> None:
        """Scatter scikit-learn's coefficients into (n_classes, F): classes absent from training
        get no probability; a binary model's single row is the second class's log-odds (the SVM
        mirrors it onto the first class, the logistic model leaves the first at 0)."""
        coef = np.zeros((n_classes, n_features))
        intercept = np.full(n_classes, -1e3)
        present = model.classes_
        if len(present) == 2:
            coef[present[1]], intercept[present[1]] = model.coef_[0], model.intercept_[0]
            if symmetric_binary:
                coef[present[0]], intercept[present[0]] = -model.coef_[0], -model.intercept_[0]
            else:
                intercept[present[0]] = 0.0
        else:
            coef[present], intercept[present] = model.coef_, model.intercept_
        self.arrays.update(coef=coef, intercept=intercept)

    def _search_and_fit(self, X, y, n_classes, make, default_grid):
        """Scale, choose C by cross-validation over the grid (or take the given C), refit on all.
        ``make(c, class_weight, seed)`` builds the scikit-learn estimator."""
        Xs = self._fit_scaler(X)
        cw = class_weights(y, n_classes, self.class_weight)
        seed, C = self.random_state, self.C
        grid = tuple(C) if isinstance(C, (list, tuple)) else ((float(C),) if C is not None else default_grid)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings at extreme C on tiny folds
            best, scores = self._choose_c(Xs, y, lambda c: make(c, cw, seed), grid)
            model = make(best, cw, seed).fit(Xs, y)
        return model, best, scores

    def _fit_label_sets(self, X, Y, make, grid, platt: bool):
        """One-vs-rest on an (N, L) 0/1 matrix (:mod:`.multi_label`); ``class_weight`` per label."""
        from .multi_label import fit_linear_label_sets

        cw = self.class_weight if self.class_weight == "balanced" else None
        fit_linear_label_sets(self, X, Y, lambda c: make(c, cw, self.random_state), grid, platt)
        return self

    def _choose_c(self, Xs, y, make, grid):
        from .base import LARGE_PROBLEM

        folds = _cv_folds(y)
        if len(grid) == 1 or folds == 0:
            return float(grid[len(grid) // 2] if folds == 0 and len(grid) > 1 else grid[0]), {}
        from sklearn.model_selection import StratifiedKFold, train_test_split

        seed = self.random_state
        if Xs.size >= LARGE_PROBLEM:
            # One stratified held-out split (at most 10,000 images), C from small to large, each
            # fit warm-started from the previous one: minutes instead of hours at 60,000 images.
            tr, va = train_test_split(np.arange(len(y)), test_size=min(0.2, 10_000 / len(y)),
                                      stratify=y, random_state=seed)
            splits, warm = [(tr, va)], True
        else:
            splits, warm = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(Xs, y)), False
        acc = {c: [] for c in grid}
        for tr, va in splits:
            if len(np.unique(y[tr])) < 2:
                continue
            model = None
            for c in sorted(grid):
                if warm and model is not None and hasattr(model, "warm_start"):
                    model.set_params(C=c, warm_start=True)
                else:
                    model = make(c)
                model.fit(Xs[tr], y[tr])
                acc[c].append(np.mean(model.predict(Xs[va]) == y[va]))
        scores = {c: float(np.mean(a)) if a else 0.0 for c, a in acc.items()}
        best = max(grid, key=lambda c: (round(scores[c], 6), -abs(np.log10(c))))  # ties: milder C
        self.info["c_search"] = (f"one held-out split of {len(splits[0][1])} images, warm-started" if warm
                                 else f"{len(splits)}-fold stratified cross-validation")
        return float(best), {str(k): v for k, v in scores.items()}


class LogisticHead(LinearHead):
    """Multinomial logistic regression (scikit-learn), C cross-validated over 1e-4..1e2."""

    name = "logistic"
    multilabel = True  # label sets: one binary logistic model per label (.multi_label)

    def __init__(self, C=None, class_weight=None, random_state=0, max_iter=1000):
        super().__init__(C=C, class_weight=class_weight, random_state=random_state)
        self.max_iter = max_iter

    def _fit(self, X, y, n_classes):
        from sklearn.linear_model import LogisticRegression

        def make(c, cw, seed):
            return LogisticRegression(C=c, max_iter=self.max_iter, class_weight=cw,
                                      random_state=seed)

        if y.ndim == 2:
            return self._fit_label_sets(X, y, make, DEFAULT_C_GRID, platt=False)
        model, best, scores = self._search_and_fit(X, y, n_classes, make, DEFAULT_C_GRID)
        self._store(model, X.shape[1], n_classes, symmetric_binary=False)
        self.info.update(C=best, cv_accuracy=scores)
        return self


class SVMHead(LinearHead):
    """Linear SVM (one-vs-rest); decision values become probabilities by a softmax whose
    temperature is fitted on the training decisions."""

    name = "svm"
    multilabel = True  # label sets: one Platt-scaled linear SVM per label (.multi_label)

    def _fit(self, X, y, n_classes):
        from sklearn.svm import LinearSVC

        def make(c, cw, seed):
            return LinearSVC(C=c, class_weight=cw, random_state=seed, max_iter=5000)

        if y.ndim == 2:
            return self._fit_label_sets(X, y, make, DEFAULT_C_GRID[:5], platt=True)
        model, best, scores = self._search_and_fit(X, y, n_classes, make, DEFAULT_C_GRID[:5])
        self._store(model, X.shape[1], n_classes, symmetric_binary=True)
        self.info.update(C=best, cv_accuracy=scores, temperature=1.0)
        self.info["temperature"] = fit_temperature(self.logits(X), y)
        return self
