"""One class per image: targets are class indices, the output a softmax, the answer its argmax."""
from __future__ import annotations

from functools import partial

import numpy as np

from ..._util.numerics import softmax
from ..feature_blocks import predicted_classes
from .base import Task
from .class_scores import accuracy, expected_calibration_error, log_loss, macro_f1, top_k_accuracy


def single_label_metrics(top_k: int = 5, n_bins: int = 15) -> dict:
    """The single-label metrics (name -> ``f(class-index targets, probabilities)``): accuracy, top-``k``
    accuracy, macro-F1 over the classes present, log-loss and the ECE over ``n_bins`` confidence bins."""
    return {"accuracy": accuracy, f"top{top_k}_accuracy": partial(top_k_accuracy, k=top_k), "macro_f1": macro_f1,
            "log_loss": log_loss, "ece": partial(expected_calibration_error, n_bins=n_bins)}


class SingleLabelTask(Task):
    """Single-label classification: ``softmax`` over the classes, cross-entropy, argmax."""

    name = "single-label"
    loss = "cross-entropy"
    record_fields = ("path", "label", "predicted", "top_k", "description", "error")
    report_sections = ("metrics", "ablations", "few_shot", "per_class", "confusion", "calibration", "mistakes")

    def encode(self, labels):
        """Sorted distinct labels as ``classes_``, each label's index as its target; at least two
        classes, of a classification type (scikit-learn's check)."""
        from sklearn.utils.multiclass import check_classification_targets

        if any(isinstance(v, (tuple, list, set, frozenset)) for v in labels):
            raise ValueError("the labels are label sets (a manifest's 'labels' column): fit them with "
                             "task='multi-label' (wordsight fit --task multi-label)")
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
        """accuracy, top-5 accuracy, macro-F1, log-loss and ECE (15 bins): :func:`single_label_metrics`."""
        return single_label_metrics()
