"""Classification metrics from probabilities: accuracy, top-k, macro-F1, per-class P/R/F1,
confusion matrix, expected calibration error and the reliability diagram's bins."""
from __future__ import annotations

import numpy as np


def _indices(y_true, classes) -> np.ndarray:
    index = {c: i for i, c in enumerate(list(classes))}
    missing = sorted({str(v) for v in y_true if v not in index})
    if missing:
        raise ValueError(f"labels {missing[:5]} are not among the model's classes {list(classes)}")
    return np.asarray([index[v] for v in y_true], np.int64)


def top_k_accuracy(y_idx: np.ndarray, proba: np.ndarray, k: int = 5) -> float:
    """Share of rows whose true class is among the ``k`` most probable (ties: lower index first)."""
    k = min(k, proba.shape[1])
    top = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    return float(np.mean((top == y_idx[:, None]).any(1)))


def confusion(y_idx: np.ndarray, pred_idx: np.ndarray, n: int) -> np.ndarray:
    """Confusion matrix (n, n): rows are true classes, columns predicted ones."""
    m = np.zeros((n, n), np.int64)
    np.add.at(m, (y_idx, pred_idx), 1)
    return m


def per_class(conf: np.ndarray) -> dict[str, np.ndarray]:
    tp = np.diag(conf).astype(float)
    pred = conf.sum(0).astype(float)
    true = conf.sum(1).astype(float)
    precision = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
    recall = np.divide(tp, true, out=np.zeros_like(tp), where=true > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": true.astype(np.int64)}


def calibration(y_idx: np.ndarray, proba: np.ndarray, n_bins: int = 15) -> dict:
    """Expected calibration error (equal-width confidence bins, weighted by bin size) and the
    bins of the reliability diagram."""
    conf = proba.max(1)
    correct = (proba.argmax(1) == y_idx).astype(float)
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


def classification_metrics(y_true, proba: np.ndarray, classes, top_k: int = 5, n_bins: int = 15) -> dict:
    """All headline and per-class metrics of ``proba`` (rows: samples, columns: ``classes``)."""
    classes = list(classes)
    proba = np.asarray(proba, float)
    if proba.ndim != 2 or proba.shape[1] != len(classes):
        raise ValueError(f"proba must be (N, {len(classes)}), got {proba.shape}")
    if len(y_true) != len(proba):
        raise ValueError(f"{len(y_true)} labels for {len(proba)} predictions")
    y_idx = _indices(y_true, classes)
    pred = proba.argmax(1)
    conf = confusion(y_idx, pred, len(classes))
    pc = per_class(conf)
    present = pc["support"] > 0
    nll = float(-np.log(np.clip(proba[np.arange(len(y_idx)), y_idx], 1e-12, None)).mean())
    cal = calibration(y_idx, proba, n_bins)
    return {
        "n": int(len(y_idx)),
        "accuracy": float(np.mean(pred == y_idx)),
        f"top{top_k}_accuracy": top_k_accuracy(y_idx, proba, top_k),
        "macro_f1": float(pc["f1"][present].mean()) if present.any() else 0.0,
        "log_loss": nll,
        "ece": cal["ece"],
        "per_class": {str(c): {"precision": float(pc["precision"][i]), "recall": float(pc["recall"][i]),
                               "f1": float(pc["f1"][i]), "support": int(pc["support"][i])}
                      for i, c in enumerate(classes)},
        "confusion": conf.tolist(),
        "calibration": cal,
        "classes": [str(c) for c in classes],
    }
