"""Scores of independent per-label probabilities ``proba`` (N, L) against indicator targets ``Y``
(N, L) of 0/1: the multi-label task's metrics, its thresholds and the data of its report.

Average precision is scikit-learn's (``average_precision_score``, the area under the step
precision-recall curve); mAP is its macro average over the labels that have a positive example
(a label absent from the test images has no AP). F1 is computed at per-label thresholds
(``p >= threshold`` says "present").
"""
from __future__ import annotations

import numpy as np


def per_label_ap(Y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Average precision of each label (NaN for a label with no positive example in ``Y``)."""
    from sklearn.metrics import average_precision_score

    Y, proba = np.asarray(Y), np.asarray(proba, float)
    out = np.full(Y.shape[1], np.nan)
    for j in range(Y.shape[1]):
        if Y[:, j].any():
            out[j] = average_precision_score(Y[:, j], proba[:, j])
    return out


def mean_average_precision(Y: np.ndarray, proba: np.ndarray) -> float:
    """mAP: the mean of :func:`per_label_ap` over the labels with a positive example (0.0 if none)."""
    ap = per_label_ap(Y, proba)
    return float(np.nanmean(ap)) if np.isfinite(ap).any() else 0.0


def decisions(proba: np.ndarray, thresholds) -> np.ndarray:
    """(N, L) booleans: label present where its probability reaches its threshold."""
    return np.asarray(proba, float) >= np.asarray(thresholds, float)[None, :]


def f1_scores(Y: np.ndarray, pred: np.ndarray) -> dict:
    """Micro-F1 (pooled over labels), macro-F1 (mean over the labels with a positive example or a
    positive prediction) and each label's precision, recall, F1 and support."""
    Y, pred = np.asarray(Y).astype(bool), np.asarray(pred).astype(bool)
    tp = (Y & pred).sum(0).astype(float)
    fp = (~Y & pred).sum(0).astype(float)
    fn = (Y & ~pred).sum(0).astype(float)
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
    recall = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=(tp + fn) > 0)
    f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=(2 * tp + fp + fn) > 0)
    seen = (tp + fp + fn) > 0
    micro = 2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1e-300)
    return {"micro_f1": float(micro) if (tp.sum() + fp.sum() + fn.sum()) > 0 else 0.0,
            "macro_f1": float(f1[seen].mean()) if seen.any() else 0.0,
            "precision": precision, "recall": recall, "f1": f1, "support": Y.sum(0).astype(np.int64)}


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) of the threshold that maximises one label's F1 on scores ``p`` (0/1 ``y``):
    every distinct score is a candidate; the threshold is the midpoint between the lowest score
    kept and the next lower score, so that a new image scoring between them is decided as the
    training images were. Ties: the higher threshold (fewer false alarms)."""
    y, p = np.asarray(y).astype(bool), np.asarray(p, float)
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    tp = np.cumsum(ys)
    fp = np.cumsum(~ys)
    last = np.r_[ps[1:] != ps[:-1], True]  # a cut can only fall between distinct scores
    f1 = 2 * tp / (tp + fp + ys.sum())
    f1 = np.where(last, f1, -1.0)
    k = int(np.argmax(f1))  # first maximum: the highest threshold reaching it
    below = ps[k + 1] if k + 1 < len(ps) else 0.0
    return float((ps[k] + below) / 2), float(f1[k])


def thresholds_by_f1(Y: np.ndarray, proba: np.ndarray, min_positives: int, default: float = 0.5):
    """Per-label thresholds maximising F1 on out-of-fold ``proba``; a label with fewer than
    ``min_positives`` positive (or negative) examples keeps ``default``, with the reason."""
    Y = np.asarray(Y)
    thresholds, reasons = np.full(Y.shape[1], default), {}
    for j in range(Y.shape[1]):
        pos = int(Y[:, j].sum())
        if pos < min_positives or len(Y) - pos < min_positives:
            reasons[j] = (f"{pos} positive and {len(Y) - pos} negative training image(s): too few to choose a "
                          f"threshold by cross-validation (needs {min_positives} of each); {default:g} kept")
            continue
        thresholds[j] = best_f1_threshold(Y[:, j], proba[:, j])[0]
    return thresholds, reasons
