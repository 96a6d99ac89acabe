"""Prediction sets with a coverage guarantee, and "unknown", from a classifier's out-of-fold scores.

At fit the Classifier keeps, for every training image, the logits of a copy of its head fitted
on the other folds (cross-conformal: up to 10 stratified folds, fewer when a class has fewer
images; none when a class has one image: sets then need a refit with more images). The fold
heads learn as the final head did (:meth:`~.heads.base.Head.fold_params`: a linear head's ``C``
scaled by ``n / n_fold``, since scikit-learn's penalty weighs the summed loss) and see 90% of the
images: with the same ``C`` on 80% (before), they were less confident than the final head and
APS's sets covered 2-3 points less than the target (docs/benchmarks.md, "Prediction sets: the
fold heads"). A model with a prior refits whole per fold (``MODEL_FOLDS``). From these:

- **sets** (Angelopoulos & Bates 2021): a conformity score per calibration image, LAC
  ``1 - p_true`` or APS (the probability mass of the classes ranked at or above the true one),
  its conformal quantile ``q`` = the ``ceil((n+1) * coverage)``-th smallest score, and the set of
  an image = the classes whose score is <= ``q``. Split conformal guarantees
  ``P(true class in set) >= coverage``; with out-of-fold scores the guarantee is the
  cross-conformal one (close to it in practice: measured in ``benchmarks/open_set_fashion_mnist.py``).
- **unknown**: an out-of-distribution score (``knn``: the distance to the nearest of up to
  ``MAX_BANK`` training rows kept at fit, Sun et al. 2022; ``energy``: minus the log-sum-exp of
  the head's logits; ``msp``: 1 - the highest probability), higher = less like the training
  classes, and the threshold that rejects a fraction ``reject_rate`` of the training images'
  scores (out-of-fold logits; for ``knn`` each kept row's distance to the others), by the same
  quantile rule at ``1 - reject_rate``.

The quantile rule is written here rather than taken from MAPIE: MAPIE's conformalizers fix the
confidence level when they are fitted on (X, y) with an estimator, while a saved model must answer
any coverage later from stored scores alone (safetensors, no pickle); the rule is five lines.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import ceil

import numpy as np

from .._util.numerics import softmax

METHODS = ("lac", "aps", "raps")
# RAPS (Angelopoulos et al. 2021): APS plus RAPS_LAMBDA for every rank past RAPS_K_REG, which keeps
# the sets small when the tail classes' probabilities are noisy; the paper's values for few classes.
RAPS_LAMBDA, RAPS_K_REG = 0.01, 1
OOD_SCORES = ("knn", "energy", "msp")
# Measured (benchmarks/open_set_fashion_mnist.py, train on classes 0-4, 1,000 a class): unknown-class
# AUROC 93.5 knn, 88.0 energy, 85.5 msp (200 a class: 93.6, 92.4, 88.9). The fused rows are
# L2-normalised embeddings: an image of an unseen class lies far from every training image even
# when the head's logits, which only separate the known classes, are confident; energy keeps how
# strongly any class matches, which the softmax normalises away (Liu et al. 2020).
DEFAULT_OOD = "knn"
MAX_BANK = 4096  # training rows kept for knn (a seeded random subset): bounded folder and search
MAX_FOLDS = 10  # fold heads see 90% of the images (measured beside 5: docs/benchmarks.md)
MODEL_FOLDS = 5  # a whole model with its prior refitted per fold: dearer, kept at 5


@dataclass
class Calibration:
    """Out-of-fold head ``logits`` (n, n_classes) of the training images, their class indices ``y``,
    the number of ``folds`` they came from and ``bank``, up to ``MAX_BANK`` fused training rows."""

    logits: np.ndarray
    y: np.ndarray
    folds: int
    bank: np.ndarray | None = None

    @property
    def proba(self) -> np.ndarray:
        return softmax(self.logits)


def out_of_fold(head, M: np.ndarray, y: np.ndarray, n_classes: int, random_state=0) -> Calibration | None:
    """Cross-conformal scores: a clone of the fitted ``head`` fitted on all folds but one, scoring
    the one left out, with the head's :meth:`~.heads.base.Head.fold_params` (its searched ``C``
    fixed and scaled so that the fold head is regularised per image as the head fitted on all
    images is). None when a class has a single image."""
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold

    folds = min(MAX_FOLDS, int(np.bincount(y, minlength=n_classes).min()))
    if folds < 2:
        return None
    logits = np.empty((len(y), n_classes))
    split = StratifiedKFold(folds, shuffle=True, random_state=random_state if isinstance(random_state, int) else 0)
    for train, test in split.split(M, y):
        part = clone(head).set_params(**head.fold_params(len(y), len(train))).fit(M[train], y[train], n_classes)
        logits[test] = part.logits(np.asarray(M[test], np.float64))
    rng = np.random.default_rng(random_state if isinstance(random_state, int) else 0)
    keep = np.sort(rng.choice(len(y), size=min(len(y), MAX_BANK), replace=False))
    return Calibration(logits, np.asarray(y, np.int64), folds, np.asarray(M[keep], np.float32))


def out_of_fold_model(model, blocks, M: np.ndarray, y: np.ndarray) -> Calibration | None:
    """Cross-conformal scores of a model whose probabilities are not its head's alone (a prior
    mixed in): a clone of the whole model fitted per fold on ``blocks``; its log-probabilities."""
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold

    n_classes = len(model.classes_)
    folds = min(MODEL_FOLDS, int(np.bincount(y, minlength=n_classes).min()))
    if folds < 2:
        return None
    logits = np.empty((len(y), n_classes))
    seed = model.random_state if isinstance(model.random_state, int) else 0
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(M, y):
        part = clone(model).set_params(calibration=None).fit(blocks.take(train))
        logits[test] = np.log(np.clip(part.predict_proba(blocks.take(test)), 1e-300, None))
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(y), size=min(len(y), MAX_BANK), replace=False))
    return Calibration(logits, np.asarray(y, np.int64), folds, np.asarray(M[keep], np.float32))


def held_out_split(y: np.ndarray, fraction: float, classes, random_state=0) -> np.ndarray:
    """The rows left for the head's fit when ``fraction`` of each class is held out for calibration
    (stratified, seeded); a class of under 2 images cannot give to both: a one-line ValueError."""
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y, minlength=len(classes))
    if counts.min() < 2:
        raise ValueError(f"calibration={fraction:g} needs at least 2 images of every class (one to fit, one to "
                         f"calibrate); class {str(classes[int(counts.argmin())])!r} has {int(counts.min())}: "
                         "use calibration='cross' (out-of-fold scores) or more images")
    seed = random_state if isinstance(random_state, int) else 0
    n_held = max(len(classes), int(round(fraction * len(y))))
    if len(y) - n_held < len(classes):
        raise ValueError(f"calibration={fraction:g} of {len(y)} images leaves fewer than one image per class to fit")
    rows, _ = train_test_split(np.arange(len(y)), test_size=n_held, stratify=y, random_state=seed)
    return np.sort(rows)


def held_out(logits: np.ndarray, M: np.ndarray, y: np.ndarray, fit_rows: np.ndarray, random_state=0) -> Calibration:
    """Split-conformal scores: ``logits`` of the rows the model was not fitted on (``fit_rows``: those
    it was); the knn bank from the rows it was fitted on."""
    held = np.setdiff1d(np.arange(len(y)), fit_rows)
    rng = np.random.default_rng(random_state if isinstance(random_state, int) else 0)
    keep = np.sort(rng.choice(fit_rows, size=min(len(fit_rows), MAX_BANK), replace=False))
    return Calibration(logits, np.asarray(y[held], np.int64), 0, np.asarray(M[keep], np.float32))


def check_rate(value: float, name: str) -> float:
    """``value`` as a float strictly between 0 and 1, or a one-line ValueError naming ``name``."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number between 0 and 1, not {value!r}") from None
    if not 0 < value < 1:
        raise ValueError(f"{name} must be strictly between 0 and 1, not {value:g}")
    return value


def calibration_of(model) -> Calibration | None:
    """The calibration scores a model keeps: a Classifier's (``state_.calibration``), an Ensemble's
    (its members' combined, :meth:`~wordsight.estimator.ensemble.Ensemble.calibration_or_none`), or None."""
    combined = getattr(model, "calibration_or_none", None)
    return combined() if combined is not None else getattr(getattr(model, "state_", None), "calibration", None)


def combined_calibration(members, kind: str, weights, meta, combine) -> Calibration | None:
    """An ensemble's calibration scores: its members' out-of-fold probabilities combined as the
    ensemble combines them (``combine``), when every member kept scores of the same training images
    (the same labels in the same order); no training rows for ``unknown``'s knn. A stacking meta-head
    fitted on these out-of-fold probabilities sees them in-sample: its sets may cover slightly less."""
    cals = [getattr(getattr(m, "state_", None), "calibration", None) for m in members]
    if any(c is None for c in cals) or any(len(c.y) != len(cals[0].y) or (c.y != cals[0].y).any() for c in cals):
        return None
    P = combine(kind, [c.proba for c in cals], weights, meta)
    return Calibration(np.log(np.clip(P, 1e-300, None)), cals[0].y, min(c.folds for c in cals), None)


def require_calibration(model, folder, options: str) -> None:
    """A one-line ValueError naming ``folder`` when ``model`` keeps no calibration scores for ``options``."""
    if calibration_of(model) is None:
        raise ValueError(f"{folder}: this model keeps no calibration scores (a paired or late fusion, an ensemble, a "
                         f"class of one image, or saved before they were kept): refit it for {options}")


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The ``ceil((n+1) * level)``-th smallest of ``scores`` (inf when that exceeds n): the
    finite-sample-corrected quantile of split conformal prediction."""
    scores = np.sort(np.asarray(scores, np.float64))
    k = ceil((len(scores) + 1) * level)
    return float("inf") if k > len(scores) else float(scores[k - 1])


def class_scores(P: np.ndarray, method: str) -> np.ndarray:
    """(n, K) non-conformity of every class of every row: LAC ``1 - p``; APS the mass of the
    classes ranked at or above it (ties broken by class order); RAPS APS's plus its rank penalty."""
    if method == "lac":
        return 1.0 - P
    if method in ("aps", "raps"):
        order = np.argsort(-P, axis=1, kind="stable")
        cum = np.cumsum(np.take_along_axis(P, order, axis=1), axis=1)
        if method == "raps":  # + lambda x (rank - k_reg)+, rank counted from 1
            cum = cum + RAPS_LAMBDA * np.maximum(np.arange(1, P.shape[1] + 1) - RAPS_K_REG, 0)[None]
        out = np.empty_like(P)
        np.put_along_axis(out, order, cum, axis=1)
        return out
    raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")


def set_threshold(cal: Calibration, coverage: float, method: str = "lac") -> float:
    """The score threshold of ``method``'s sets at ``coverage`` from the calibration scores."""
    coverage = check_rate(coverage, "coverage")
    S = class_scores(cal.proba, method)
    return conformal_quantile(S[np.arange(len(cal.y)), cal.y], coverage)


def set_matrix(P: np.ndarray, cal: Calibration, coverage: float, method: str = "lac") -> np.ndarray:
    """(n, K) booleans: class j is in row i's prediction set (a NaN row: no class)."""
    S = class_scores(np.nan_to_num(P, nan=0.0), method)
    return (S <= set_threshold(cal, coverage, method)) & ~np.isnan(P).any(axis=1, keepdims=True)


def ood_scores(cal: Calibration, logits: np.ndarray, rows: np.ndarray, score: str = DEFAULT_OOD) -> np.ndarray:
    """Out-of-distribution score of images (their head ``logits`` and fused ``rows``): higher =
    less like the training classes."""
    if score == "knn":
        return _nearest(_bank(cal), rows, 1)
    if score == "msp":
        return 1.0 - softmax(logits).max(axis=1)
    if score == "energy":
        m = logits.max(axis=1)
        return -(m + np.log(np.exp(logits - m[:, None]).sum(axis=1)))
    raise ValueError(f"score must be one of {', '.join(OOD_SCORES)}, not {score!r}")


def ood_threshold(cal: Calibration, reject_rate: float, score: str = DEFAULT_OOD) -> float:
    """The score above which an image is ``unknown``: it rejects ``reject_rate`` of the training
    images' scores (knn: each kept row's distance to its nearest other row)."""
    rate = check_rate(reject_rate, "reject rate")
    return conformal_quantile(ood_train_scores(cal, score), 1.0 - rate)


def ood_train_scores(cal: Calibration, score: str = DEFAULT_OOD) -> np.ndarray:
    """The training images' out-of-distribution scores the threshold is a quantile of (the same at
    every rate: a server computes them once)."""
    return _nearest(_bank(cal), _bank(cal), 2) if score == "knn" else ood_scores(cal, cal.logits, None, score)


def _bank(cal: Calibration) -> np.ndarray:
    if cal.bank is None or len(cal.bank) < 2:
        raise ValueError("this model keeps no training rows for the knn score: use score='energy' or refit")
    return cal.bank


def _nearest(bank: np.ndarray, rows: np.ndarray, k: int, batch: int = 2048) -> np.ndarray:
    """Euclidean distance of each row to its ``k``-th nearest bank row, searched in batches."""
    from sklearn.neighbors import NearestNeighbors

    search = NearestNeighbors(n_neighbors=k).fit(bank)
    rows = np.asarray(rows, np.float32)
    return np.concatenate([search.kneighbors(rows[i:i + batch])[0][:, k - 1] for i in range(0, len(rows), batch)]
                          or [np.empty(0)])


def annotate_records(model, X, records: list, coverage: float | None, reject_rate: float | None,
                     method: str = "lac") -> list:
    """``records`` (``model.predict_records(X)``: the kept inputs in order, then the failures)
    with each image's prediction set at ``coverage`` and, at ``reject_rate``, ``unknown`` (its
    ``predicted`` then ``"unknown"``)."""
    cal = model.calibration_scores()
    F = model.featurize(X)
    if coverage is not None:
        S = set_matrix(model.proba_featurized(F), cal, coverage, method)
        for r, row in zip(records, S):
            r.prediction_set = [c for c, k in zip(model.classes_.tolist(), row) if k]
    if reject_rate is not None:
        t = ood_threshold(cal, reject_rate)
        z = ood_scores(cal, model.ood_logits(F), F.matrix)
        for r, z in zip(records, z):
            r.unknown = bool(z > t)
            r.predicted = "unknown" if r.unknown else r.predicted
    return records
