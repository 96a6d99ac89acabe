"""Several labels per image (scenes): each label scored independently, present or not.

Targets are an indicator matrix (N, L) over ``classes_`` (the sorted labels seen in training,
scikit-learn's ``MultiLabelBinarizer`` order); the head's scores are per-label logits, its
log-output each label's log-sigmoid (:meth:`~..heads.base.Head.log_output`), and ``predict_proba``
their sigmoid: independent probabilities, rows need not sum to one. ``predict`` answers the label
set of each image: the labels whose probability reaches their own threshold, chosen at fit on
out-of-fold probabilities of the training images (best F1 per label; :mod:`.label_scores`). The
metrics are mAP (the headline), micro-F1 and macro-F1 at those thresholds.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from .base import Task
from .label_scores import f1_scores, mean_average_precision, thresholds_by_f1

# Distinct labels a model may hold: each is a one-vs-rest fit (10,000 labels x 5 folds took hours
# on 2 cores; a vocabulary that size is a retrieval problem, not a head).
MAX_LABELS = 1000
# A label needs this many positive and negative training images for a cross-validated threshold
# (fewer: 0.5 is kept, and the reason saved with the model).
MIN_POSITIVES = 3
THRESHOLD_FOLDS = 5


def _label_set(label) -> tuple:
    if isinstance(label, str):
        return (label,)
    if isinstance(label, (tuple, list, set, frozenset)):
        return tuple(sorted({str(v) for v in label}))
    raise ValueError(f"a multi-label target must be a label set (list or tuple of labels), not "
                     f"{type(label).__name__} {label!r}")


def _f1_at(key: str, thresholds, Y, proba) -> float:
    th = np.full(np.asarray(proba).shape[1], 0.5) if thresholds is None else thresholds
    return f1_scores(Y, np.asarray(proba, float) >= th[None, :])[key]


class MultiLabelTask(Task):
    """Multi-label tagging: independent sigmoid per label, thresholds per label (``thresholds_``,
    learned at fit; 0.5 before), label sets as answers."""

    name = "multi-label"
    label_sets = True
    loss = "binary cross-entropy per label (logistic; svm: Platt-scaled) or asymmetric loss (mlp)"
    record_fields = ("path", "label", "predicted", "top_k", "description", "error")
    report_sections = ("metrics", "per_label", "mistakes")
    prior_center = "yes"  # the tag prior's whole mean: the share of issue 26 was measured on single labels only

    def __init__(self, thresholds=None, reasons=None):
        self.thresholds_ = None if thresholds is None else np.asarray(thresholds, np.float64)
        self.reasons_ = dict(reasons or {})

    # ------------------------------------------------------------------ targets
    def encode(self, labels):
        """``classes_`` (sorted labels seen) and the (N, L) int64 indicator matrix; a label given
        alone is a set of one. At least two labels, at most :data:`MAX_LABELS`."""
        sets = [_label_set(v) for v in labels]
        classes = np.array(sorted({c for s in sets for c in s}), dtype=object).astype(str)
        if len(classes) < 2:
            raise ValueError(f"a multi-label model needs at least two distinct labels among the training images, "
                             f"got {len(classes)}: {classes.tolist()}")
        if len(classes) > MAX_LABELS:
            raise ValueError(f"{len(classes):,} distinct labels: a multi-label model holds at most {MAX_LABELS:,} "
                             "(each label is a one-vs-rest fit); merge rare labels or search by text instead")
        return classes, self.targets(sets, classes)

    def validate(self, model, X, y):
        """The matrix checked as scikit-learn checks it; ``y`` (label sets) as many as its rows."""
        from sklearn.utils.validation import check_consistent_length, validate_data

        X = validate_data(model, X, dtype=[np.float64, np.float32])
        y = list(y)
        check_consistent_length(X, y)
        return X, y

    def targets(self, labels, classes) -> np.ndarray:
        """The (N, L) indicator matrix of ``labels`` (label sets) over ``classes``; a label that is
        none of ``classes`` is a one-line ValueError naming it."""
        index = {str(c): j for j, c in enumerate(classes)}
        Y = np.zeros((len(labels), len(classes)), np.int64)
        unknown = set()
        for i, s in enumerate(labels):
            for c in _label_set(s):
                if c in index:
                    Y[i, index[c]] = 1
                else:
                    unknown.add(c)
        if unknown:
            raise ValueError(f"label(s) {sorted(unknown)[:5]} are not labels of this model ({len(classes)} labels: "
                             f"{', '.join(map(str, list(classes)[:10]))}{', ...' if len(classes) > 10 else ''})")
        return Y

    # ------------------------------------------------------------------ output and answer
    def output(self, log_scores):
        """Independent probabilities: ``exp`` of the per-label log-sigmoids."""
        return np.exp(np.asarray(log_scores, np.float64))

    def thresholds(self, n_labels: int) -> np.ndarray:
        """The per-label thresholds (0.5 for a model not fitted yet)."""
        return np.full(n_labels, 0.5) if self.thresholds_ is None else self.thresholds_

    def decide(self, output, classes):
        """The label set (a tuple, in ``classes`` order) of each row; ``None`` for a NaN row."""
        output = np.asarray(output, float)
        th = self.thresholds(output.shape[1])
        out = np.empty(len(output), dtype=object)
        for i, row in enumerate(output):
            out[i] = None if np.isnan(row).any() else tuple(str(c) for c, k in zip(classes, row >= th) if k)
        return out

    def metrics(self):
        """mAP (headline), micro-F1 and macro-F1 at the fitted thresholds."""
        th = self.thresholds_
        return {"mAP": mean_average_precision, "micro_f1": partial(_f1_at, "micro_f1", th),
                "macro_f1": partial(_f1_at, "macro_f1", th)}

    # ------------------------------------------------------------------ fit hooks
    def check_model(self, model) -> None:
        """Refuse, in one line, the parts that cannot score labels independently."""
        fusion, head = model.fusion_, model.unfitted_head()
        if fusion.paired:
            raise ValueError(f"the multi-label task takes the fusions image, text, concat and prior, not {fusion.name!r}")
        if fusion.prior and (head.name != "logistic" or getattr(fusion, "weight", "auto") != "auto"):
            raise ValueError("the multi-label language prior is the per-label prior probe: fusion 'prior' with "
                             "weight 'auto' and the logistic head")
        if not getattr(head, "multilabel", False):
            raise ValueError(f"head {head.name!r} does not score labels independently: use logistic, svm, mlp or mil "
                             "for multi-label")
        if isinstance(model.calibration, float):
            raise ValueError("a multi-label model keeps no held-out calibration split: use calibration='cross' "
                             "or None")

    def fit_decisions(self, model, fusion, head, M, Y) -> "MultiLabelTask":
        """A fitted copy: thresholds chosen on out-of-fold probabilities of the training rows, the
        probabilities ``predict_proba`` computes: the fusion's where it adds to the head (the
        language prior's per-label probe), else the head's."""
        from .label_folds import fold_splits, out_of_fold_proba

        splits = fold_splits(len(Y), THRESHOLD_FOLDS, model.random_state)
        proba = fusion.out_of_fold_proba(M, Y, splits)
        if proba is None:
            proba = out_of_fold_proba(head, M, Y, splits)
        th, reasons = thresholds_by_f1(Y, proba, MIN_POSITIVES)
        return MultiLabelTask(th, {str(model.classes_[j]): r for j, r in reasons.items()})

    def calibrate(self, model, head, M, y, rows, blocks):
        """No conformal scores: prediction sets and "unknown" are single-label notions here."""
        return None

    def language_prior(self, classes, **options):
        """The language prior of label sets: each label's zero-shot log-odds against "none"
        (:class:`~wordsight.zeroshot.tags.TagPrior`), for the per-label prior probe."""
        from ...zeroshot.tags import tag_prior

        return tag_prior(classes, **options)

    # ------------------------------------------------------------------ saved form and records
    def state(self) -> dict | None:
        """What a fit learned, for config.json: the thresholds and why any kept the default."""
        if self.thresholds_ is None:
            return None
        return {"thresholds": [float(t) for t in self.thresholds_], "goal": "best F1 per label",
                "reasons": dict(self.reasons_)}

    def from_state(self, state, n_labels: int) -> "MultiLabelTask":
        """The fitted task from :meth:`state` (checked: one threshold in [0, 1] per label)."""
        th = np.asarray(state.get("thresholds"), dtype=np.float64) if isinstance(state, dict) else None
        if th is None or th.shape != (n_labels,) or not np.all((th >= 0) & (th <= 1)):
            raise ValueError(f"task_state must hold {n_labels} thresholds in [0, 1]")
        reasons = state.get("reasons") or {}
        return MultiLabelTask(th, reasons if isinstance(reasons, dict) else {})

    def words(self, proba, classes, concept_lines, descriptions=None) -> list[str]:
        """Descriptions of images: ``tags: Coat (0.84); Shirt (0.93)``, the label set the model
        answers (each tag with its probability), or ``tags: none``, then the concepts line."""
        sets = self.decide(proba, np.asarray(classes))
        index = {str(c): j for j, c in enumerate(classes)}
        out = []
        for row, found, concepts in zip(np.asarray(proba, float), sets, concept_lines):
            lead = "tags: " + ("; ".join(f"{t} ({row[index[t]]:.2f})" for t in found) if found else "none")
            out.append(f"{lead}. {concepts}" if concepts else lead)
        return out

    def records(self, paths, labels, classes, proba, top_k, texts):
        """Prediction records: ``predicted`` the label set (a list), ``top_k`` the ``top_k`` most
        probable labels with their probabilities."""
        from .label_records import label_set_records

        return label_set_records(paths, labels, classes, proba, top_k, texts, self.decide(proba, classes))

    def __repr__(self) -> str:
        return "MultiLabelTask()" if self.thresholds_ is None else f"MultiLabelTask(<{len(self.thresholds_)} thresholds>)"
