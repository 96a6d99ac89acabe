"""The task interface: what a label is, what the head's output becomes, how a model is scored.

A task decides the target encoding (labels -> ``classes_`` and the head's targets), what the
head's log-scores become (``output``: what ``predict_proba`` reports) and what ``predict``
answers (``decide``), and names its loss, its metrics (functions of the encoded targets and the
outputs, computed with numpy / scikit-learn), the fields of a prediction record and the sections
of a report. The :class:`~wordsight.estimator.Classifier` asks its task and never branches on it;
so do :func:`wordsight.evaluate.evaluate` (the task's metrics, the data of its sections) and
:func:`wordsight.evaluate.write_report` (only its sections).

Report sections, in the order a report shows them (:data:`wordsight.evaluate.report_html.SECTIONS`):
``metrics`` (a card per metric), ``ablations`` (refitted variants and zero-shot), ``few_shot`` (the
few-shot curve), ``per_class`` (precision / recall / F1 table), ``confusion`` (confusion matrix),
``calibration`` (reliability diagram) and ``mistakes`` (the most confident mistakes). The report
reads ``accuracy``, ``macro_f1`` and ``ece`` for ``ablations``, and class probabilities for
``per_class``, ``confusion``, ``calibration`` and ``mistakes``.
"""
from __future__ import annotations

from typing import Callable, ClassVar

import numpy as np


class Task:
    """Base class; subclasses set the class attributes and implement the four methods."""

    name: ClassVar[str] = ""
    label_sets: ClassVar[bool] = False  # labels are sets of labels (multi-label), not one label per image
    loss: ClassVar[str] = ""
    record_fields: ClassVar[tuple[str, ...]] = ()
    report_sections: ClassVar[tuple[str, ...]] = ()
    # how the language prior (fusion='prior') centres on the training images
    # (:class:`~wordsight.zeroshot.pipeline.ZeroShotPipeline`'s ``center``)
    prior_center: ClassVar[str] = "others"

    def encode(self, labels) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        """(``classes_``, the head's integer targets) from the training labels."""
        raise NotImplementedError

    def output(self, log_scores: np.ndarray) -> np.ndarray:  # pragma: no cover
        """What ``predict_proba`` reports for the model's (N, n_classes) log-scores."""
        raise NotImplementedError

    def decide(self, output: np.ndarray, classes: np.ndarray) -> np.ndarray:  # pragma: no cover
        """What ``predict`` answers per row of ``output``; ``None`` for a NaN row (an unreadable image)."""
        raise NotImplementedError

    def metrics(self) -> dict[str, Callable[[np.ndarray, np.ndarray], float]]:  # pragma: no cover
        """Metric name -> ``f(targets, output)`` (a float): how the task is scored. ``targets`` are
        the indices of the true labels in ``classes_``; the first metric is the headline one."""
        raise NotImplementedError

    # ------------------------------------------------------------------ hooks with a default
    def check_model(self, model) -> None:
        """Refuse, in one line, a fusion, head or option this task cannot work with (none here)."""

    def validate(self, model, X, y):
        """(X, y) checked as scikit-learn checks a classifier's matrix and targets."""
        from sklearn.utils.validation import validate_data

        return validate_data(model, X, y, dtype=[np.float64, np.float32])

    def targets(self, labels, classes) -> np.ndarray:
        """The targets of ``labels`` given the fitted ``classes`` (what the metrics take)."""
        index = {c: i for i, c in enumerate(list(classes))}
        return np.asarray([index[v] for v in labels], np.int64)

    def fit_decisions(self, model, fusion, head, M: np.ndarray, y: np.ndarray) -> "Task":
        """The task as fitted on the training rows ``M`` of ``head`` and the fitted ``fusion``
        (what it decides with); itself here."""
        return self

    def calibrate(self, model, head, M, y, rows, blocks):
        """Out-of-fold scores for prediction sets and "unknown" (:mod:`..conformal_views`)."""
        from ..conformal_views import calibrate

        return calibrate(model, head, M, y, rows, blocks)

    def language_prior(self, classes, **options):
        """The zero-shot pipeline that is the language prior of a model of ``classes``
        (``fusion='prior'``): log-probabilities over the classes."""
        from ...zeroshot.pipeline import ZeroShotPipeline

        return ZeroShotPipeline(classes, **options)

    def state(self) -> dict | None:
        """What a fit taught the task (JSON for config.json), or None."""
        return None

    def from_state(self, state, n_labels: int) -> "Task":
        """The fitted task from :meth:`state`'s JSON."""
        return self

    def words(self, proba, classes, concept_lines, descriptions=None) -> list[str]:
        """Descriptions of images: the classes that match best, then their concepts."""
        from ...text.phrasing import lead_with_classes

        return lead_with_classes(proba, classes, concept_lines, descriptions)

    def records(self, paths, labels, classes, proba, top_k, texts) -> list:
        """One :class:`~wordsight.io.records.Prediction` per row of ``proba``."""
        from ...io.records import predictions

        return predictions(paths, labels, classes, proba, top_k, texts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))
