"""Scores of class probabilities ``proba`` (N, n_classes) against class-index targets ``y``: the
single-label task's metrics and the data of its report (per-class table, confusion matrix,
reliability bins). Plain numpy; ties of equal probabilities go to the lower class index."""
from __future__ import annotations

import numpy as np


def accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    """Share of rows whose most probable class is the target."""
    return float(np.mean(np.asarray(proba).argmax(1) == np.asarray(y)))


def top_k_accuracy(y: np.ndarray, proba: np.ndarray, k: int = 5) -> float:
    """Share of rows whose target is among the ``k`` most probable classes (ties: lower index first)."""
    k = min(k, proba.shape[1])
    top = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    return float(np.mean((top == np.asarray(y)[:, None]).any(1)))


def confusion(y: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    """Confusion matrix (n, n): rows are true classes, columns predicted ones."""
    m = np.zeros((n, n), np.int64)
    np.add.at(m, (y, pred), 1)
    return m


def per_class(conf: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support of each class from the confusion matrix (0 where undefined)."""
    tp = np.diag(conf).astype(float)
    pred = conf.sum(0).astype(float)
    true = conf.sum(1).astype(float)
    precision = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
    recall = np.divide(tp, true, out=np.zeros_like(tp), where=true > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": true.astype(np.int64)}


def macro_f1(y: np.ndarray, proba: np.ndarray) -> float:
    """F1 averaged over the classes present in the targets."""
    proba = np.asarray(proba)
    pc = per_class(confusion(np.asarray(y), proba.argmax(1), proba.shape[1]))
    present = pc["support"] > 0
    return float(pc["f1"][present].mean()) if present.any() else 0.0


def log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log-probability of the target (probabilities clipped at 1e-12)."""
    proba = np.asarray(proba, float)
    return float(-np.log(np.clip(proba[np.arange(len(proba)), np.asarray(y)], 1e-12, None)).mean())


def calibration(y: np.ndarray, proba: np.ndarray, n_bins: int = 15) -> dict:
    """Expected calibration error (equal-width confidence bins (lo, hi], weighted by bin size) and
    the bins of the reliability diagram."""
    conf = proba.max(1)
    correct = (proba.argmax(1) == y).astype(float)
    edges = np.linspace(0, 1, n_bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        m = which == b
        if m.any():
            acc, c = float(correct[m].mean()), float(conf[m].mean())
            ece += m.mean() * abs(acc - c)
            bins.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "count": int(m.sum()),
                         "accuracy": acc, "confidence": c})
    return {"ece": float(ece), "bins": bins, "n_bins": n_bins}


def expected_calibration_error(y: np.ndarray, proba: np.ndarray, n_bins: int = 15) -> float:
    """The ECE of :func:`calibration`."""
    return calibration(np.asarray(y), np.asarray(proba, float), n_bins)["ece"]
