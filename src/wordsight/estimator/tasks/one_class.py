"""Normal or not (one-class): the output is an anomaly score (higher = more abnormal), the answer
``normal`` / ``abnormal`` at the score 0 (the detector's threshold subtracted), and the metrics
treat abnormal as the positive class: AUROC, AUPR and the false-positive rate at 95% TPR."""
from __future__ import annotations

import numpy as np

from .base import Task


def auroc(targets: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve, abnormal (target 1) positive, ``scores`` higher = more abnormal."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(targets, scores))


def aupr(targets: np.ndarray, scores: np.ndarray) -> float:
    """Average precision (area under precision-recall), abnormal positive."""
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(targets, scores))


def fpr_at_tpr(targets: np.ndarray, scores: np.ndarray, tpr: float = 0.95) -> float:
    """The smallest false-positive rate (normal images called abnormal) at which at least ``tpr``
    of the abnormal images are found."""
    from sklearn.metrics import roc_curve

    fpr, t, _ = roc_curve(targets, scores)
    return float(fpr[np.searchsorted(t, tpr, side="left")])


class OneClassTask(Task):
    """Anomaly detection: classes ``normal`` (0) and ``abnormal`` (1); output = anomaly score."""

    name = "one-class"
    loss = "none (fitted on normal images only)"
    record_fields = ("path", "score", "decision", "threshold", "error")
    report_sections = ("metrics", "confusion", "score_histogram", "roc")

    def encode(self, labels):
        """``labels``: True / 1 for abnormal; classes ``normal``, ``abnormal`` and 0/1 targets."""
        y = np.asarray(labels).astype(bool).astype(np.int64)
        return np.array(["normal", "abnormal"]), y

    def output(self, log_scores):
        """The anomaly score: minus the detector's ``decision_function`` (given as the log-scores)."""
        return -np.asarray(log_scores, np.float64)

    def decide(self, output, classes):
        """``abnormal`` where the score is above 0, else ``normal``; None for NaN."""
        return np.array([None if np.isnan(s) else classes[int(s > 0)] for s in output], dtype=object)

    def metrics(self):
        """AUROC (the headline), AUPR and FPR at 95% TPR, abnormal positive."""
        return {"auroc": auroc, "aupr": aupr, "fpr_at_95_tpr": fpr_at_tpr}
