"""One class per image: targets are class indices, the output a softmax, the answer its argmax."""
from __future__ import annotations

import numpy as np

from ..._util.numerics import softmax
from ..feature_blocks import predicted_classes
from .base import Task


def accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    """Share of rows whose most probable class is the target."""
    return float(np.mean(np.asarray(proba).argmax(1) == np.asarray(y)))


def macro_f1(y: np.ndarray, proba: np.ndarray) -> float:
    """F1 averaged over the classes present in the targets."""
    from sklearn.metrics import f1_score

    y = np.asarray(y)
    return float(f1_score(y, np.asarray(proba).argmax(1), labels=np.unique(y), average="macro", zero_division=0))


def log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log-probability of the target (probabilities clipped at 1e-12)."""
    proba = np.asarray(proba, float)
    return float(-np.log(np.clip(proba[np.arange(len(proba)), np.asarray(y)], 1e-12, None)).mean())


class SingleLabelTask(Task):
    """Single-label classification: ``softmax`` over the classes, cross-entropy, argmax."""

    name = "single-label"
    loss = "cross-entropy"
    record_fields = ("path", "label", "predicted", "top_k", "description", "error")
    report_sections = ("metrics", "per_class", "confusion", "calibration", "ablations", "errors")

    def encode(self, labels):
        """Sorted distinct labels as ``classes_``, each label's index as its target; at least two
        classes, of a classification type (scikit-learn's check)."""
        from sklearn.utils.multiclass import check_classification_targets

        labels = np.asarray(labels)
        check_classification_targets(labels)
        classes, y = np.unique(labels, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"at least two classes are needed to fit, got {len(classes)} class(es): {classes.tolist()}")
        return classes, y.astype(np.int64)

    def output(self, log_scores):
        """Class probabilities: the softmax of the log-scores."""
        return softmax(log_scores)

    def decide(self, output, classes):
        """The most probable class of each row; ``None`` for a NaN row."""
        return predicted_classes(output, classes)

    def metrics(self):
        """accuracy, macro F1 and log-loss of class-index targets against probabilities."""
        return {"accuracy": accuracy, "macro_f1": macro_f1, "log_loss": log_loss}
