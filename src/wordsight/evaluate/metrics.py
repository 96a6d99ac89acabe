"""A model's scores on labelled images: its task's metrics plus the data of the report sections that
need some (per-class P/R/F1, confusion matrix, reliability bins). The single-label implementations
live with the task (:mod:`wordsight.estimator.tasks.class_scores`) and are re-exported here."""
from __future__ import annotations

import numpy as np

from ..estimator.tasks import SingleLabelTask
from ..estimator.tasks.class_scores import calibration, confusion, per_class, top_k_accuracy
from ..estimator.tasks.single_label import single_label_metrics

__all__ = ["calibration", "classification_metrics", "confusion", "per_class", "scores", "top_k_accuracy"]


def _indices(y_true, classes) -> np.ndarray:
    index = {c: i for i, c in enumerate(list(classes))}
    missing = sorted({str(v) for v in y_true if v not in index})
    if missing:
        raise ValueError(f"labels {missing[:5]} are not among the model's classes {list(classes)}")
    return np.asarray([index[v] for v in y_true], np.int64)


def scores(metrics: dict, sections, y_true, proba: np.ndarray, classes, n_bins: int = 15) -> dict:
    """``n``, each of ``metrics`` (name -> ``f(class-index targets, proba)``) and, for the report
    ``sections`` listed, ``per_class``, ``confusion`` and ``calibration``; then ``classes``."""
    classes = list(classes)
    proba = np.asarray(proba, float)
    if proba.ndim != 2 or proba.shape[1] != len(classes):
        raise ValueError(f"proba must be (N, {len(classes)}), got {proba.shape}")
    if len(y_true) != len(proba):
        raise ValueError(f"{len(y_true)} labels for {len(proba)} predictions")
    y_idx = _indices(y_true, classes)
    out = {"n": int(len(y_idx)), **{name: float(f(y_idx, proba)) for name, f in metrics.items()}}
    conf = confusion(y_idx, proba.argmax(1), len(classes))
    if "per_class" in sections:
        pc = per_class(conf)
        out["per_class"] = {str(c): {"precision": float(pc["precision"][i]), "recall": float(pc["recall"][i]),
                                     "f1": float(pc["f1"][i]), "support": int(pc["support"][i])}
                            for i, c in enumerate(classes)}
    if "confusion" in sections:
        out["confusion"] = conf.tolist()
    if "calibration" in sections:
        out["calibration"] = calibration(y_idx, proba, n_bins)
    out["classes"] = [str(c) for c in classes]
    return out


def classification_metrics(y_true, proba: np.ndarray, classes, top_k: int = 5, n_bins: int = 15) -> dict:
    """All headline and per-class metrics of ``proba`` (rows: samples, columns: ``classes``) as a
    single-label model's report has them."""
    return scores(single_label_metrics(top_k, n_bins), SingleLabelTask.report_sections, y_true, proba, classes, n_bins)
