"""Heads on label sets (multi-label): one independent score per label.

- linear heads (logistic, svm): one binary model per label (one-vs-rest) over the standardised
  features, one ``C`` for all labels chosen by cross-validated mean average precision; the SVM's
  decision values are Platt-scaled per label (a 1-D logistic fit on the training decisions) so
  that their sigmoid is a probability. The loop is written here rather than with scikit-learn's
  ``OneVsRestClassifier`` because a label present in every (or no) training row must still give
  a stored linear row (``OneVsRestClassifier`` keeps an opaque constant predictor): such a label
  gets a zero weight row and the intercept of its smoothed frequency.
- MLP: a sigmoid output trained with the asymmetric loss (Ridnik et al. 2021, ICCV: "Asymmetric
  Loss For Multi-Label Classification"), which down-weights the many easy negatives of each label.
"""
from __future__ import annotations

import warnings

import numpy as np

# Asymmetric loss defaults of Ridnik et al. (2021): focusing on negatives, none on positives, and
# negatives whose probability is below the margin discarded.
ASL_GAMMA_NEG, ASL_GAMMA_POS, ASL_CLIP = 4.0, 0.0, 0.05


def constant_logit(y: np.ndarray) -> float:
    """The logit of a label's smoothed training frequency ``(positives + 0.5) / (n + 1)``."""
    p = (float(np.sum(y)) + 0.5) / (len(y) + 1.0)
    return float(np.log(p / (1 - p)))


def fit_labels(Xs: np.ndarray, Y: np.ndarray, make, platt: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(coef (L, F), intercept (L,)) of one binary model per label, ``make()`` building it;
    a label with one class in ``Y`` gets a zero row and :func:`constant_logit`."""
    L, F = Y.shape[1], Xs.shape[1]
    coef, intercept = np.zeros((L, F)), np.zeros(L)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings at extreme C on small folds
        for j in range(L):
            y = Y[:, j]
            if y.min() == y.max():
                intercept[j] = constant_logit(y)
                continue
            coef[j], intercept[j] = platt_fit(make, Xs, y) if platt else _linear(make().fit(Xs, y))
    return coef, intercept


def _linear(m) -> tuple[np.ndarray, float]:
    return m.coef_[0].astype(np.float64), float(m.intercept_[0])


def platt_fit(make, Xs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """A linear model's row and intercept Platt-scaled (Platt 1999) so that their sigmoid is a
    probability: scikit-learn's ``CalibratedClassifierCV(method="sigmoid", ensemble=False)``, the
    sigmoid fitted on 3-fold out-of-fold decisions (training decisions of a separable label would
    give a near-infinite slope); a label with fewer than 3 positives or negatives keeps the
    uncalibrated decision."""
    from sklearn.calibration import CalibratedClassifierCV

    pos = int(np.sum(y))
    if min(pos, len(y) - pos) < 3:
        return _linear(make().fit(Xs, y))
    cal = CalibratedClassifierCV(make(), method="sigmoid", cv=3, ensemble=False).fit(Xs, y)
    part = cal.calibrated_classifiers_[0]
    w, b = _linear(part.estimator)
    sig = part.calibrators[0]  # P(y=1) = 1 / (1 + exp(a_ * f + b_))
    a, c = -float(sig.a_), -float(sig.b_)
    return a * w, a * b + c


def choose_c(Xs, Y, make_c, grid, random_state=0) -> tuple[float, dict]:
    """The ``C`` of ``grid`` with the best mean average precision over 3 shuffled folds (labels
    with a positive and a negative in a fold's held-out rows); ties: the milder C."""
    from sklearn.metrics import average_precision_score
    from sklearn.model_selection import KFold

    if len(grid) == 1 or len(Y) < 6:
        return float(grid[len(grid) // 2] if len(grid) > 1 else grid[0]), {}
    seed = random_state if isinstance(random_state, int) else 0
    scores = {}
    for c in grid:
        aps = []
        for tr, va in KFold(3, shuffle=True, random_state=seed).split(Xs):
            coef, b = fit_labels(Xs[tr], Y[tr], lambda c=c: make_c(c))
            z = Xs[va] @ coef.T + b
            aps += [average_precision_score(Y[va, j], z[:, j]) for j in range(Y.shape[1])
                    if 0 < Y[va, j].sum() < len(va)]
        scores[c] = float(np.mean(aps)) if aps else 0.0
    best = max(grid, key=lambda c: (round(scores[c], 6), -abs(np.log10(c))))
    return float(best), {str(k): v for k, v in scores.items()}


def fit_linear_label_sets(head, X, Y, make_c, grid, platt: bool) -> None:
    """Fit a linear head on label sets: scale, choose C (or take the given one), fit each label."""
    Xs = head._fit_scaler(X)
    C = head.C
    grid = tuple(C) if isinstance(C, (list, tuple)) else ((float(C),) if C is not None else grid)
    best, scores = choose_c(Xs, Y, make_c, grid, head.random_state)
    coef, intercept = fit_labels(Xs, Y, lambda: make_c(best), platt)
    head.arrays.update(coef=coef, intercept=intercept)
    head.info.update(C=best, cv_mean_ap=scores, temperature=1.0,
                     c_search="3-fold cross-validated mean average precision" if scores else "given or too few images")


def asymmetric_loss(logits, targets, gamma_neg=ASL_GAMMA_NEG, gamma_pos=ASL_GAMMA_POS, clip=ASL_CLIP):
    """Mean asymmetric loss of per-label ``logits`` against 0/1 ``targets`` (torch): positives
    ``-(1-p)^gamma_pos log p``; negatives with the shifted probability ``p_m = max(p - clip, 0)``,
    ``-p_m^gamma_neg log(1 - p_m)``; summed over labels, averaged over rows."""
    import torch

    p = torch.sigmoid(logits)
    p_m = (p - clip).clamp(min=0) if clip else p
    pos = targets * (1 - p).pow(gamma_pos) * torch.log(p.clamp(min=1e-8))
    neg = (1 - targets) * p_m.pow(gamma_neg) * torch.log((1 - p_m).clamp(min=1e-8))
    return -(pos + neg).sum(1).mean()
