"""What ``POST /v1/predict`` answers beyond the top-k (issue 23): an anomaly detector's score,
decision and threshold; a classifier's prediction set at a ``coverage`` and ``unknown`` at a
``reject_rate``.

Nothing is computed here that the estimator does not compute: a detector's score is
``score_featurized`` (what ``score_samples`` returns), a set is :func:`~wordsight.estimator.conformal.set_matrix`
of the record's probabilities (every class: the record's top-k is all of them, i.e.
``predict_proba``), ``unknown`` compares :func:`~wordsight.estimator.conformal.ood_scores` with the
quantile of the training images' scores (:func:`~wordsight.estimator.conformal.ood_train_scores`,
computed once per server).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ..estimator.conformal import METHODS as SET_METHODS
from ..io.sources import Sample
from .error_responses import ApiError


@dataclass
class Answer:
    """One image's result on the model thread: a classifier's ``record`` (and ``ood`` score when the
    model keeps calibration scores), or a detector's ``anomaly`` fields, or the ``error``."""

    path: str | None
    record: object = None
    ood: float | None = None
    anomaly: dict | None = None
    error: str | None = None

    def __getattr__(self, name):  # a classifier's answer reads as its record (top_k, predicted, description)
        record = self.__dict__.get("record")
        if record is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(record, name)


def is_detector(model) -> bool:
    """A model that scores normality (``score_samples``) rather than classes (``predict_proba``)."""
    return hasattr(model, "score_samples") and not hasattr(model, "predict_proba")


def calibration_of(model):
    """The calibration scores a classifier kept at fit, or None (a paired fusion, a detector)."""
    from ..estimator.conformal import calibration_of as kept

    return kept(model)


def detector_answers(det, samples: list[Sample], heatmaps: bool = False) -> list[Answer]:
    """Per sample: score (higher = more normal), decision and threshold, as ``score_samples``; a
    PatchCore detector adds its heatmap (PNG, base64) when ``heatmaps``."""
    heatmaps = heatmaps and det.localises
    F, pictures = det.featurize_patches(samples, views=True) if heatmaps else (det.featurize(samples), None)
    scores = det.score_featurized(F)
    maps = det.heatmaps_featurized(F) if heatmaps else None
    out = {}
    for i, (s, v) in enumerate(zip(F.samples, scores)):
        fields = {"score": float(v), "decision": "normal" if v >= det.threshold_ else "abnormal",
                  "threshold": float(det.threshold_)}
        if maps is not None:
            fields["heatmap_png"] = _png_base64(pictures[i], maps[i])
        out[s.path] = Answer(s.path, anomaly=fields)
    out.update({f.path: Answer(f.path, error=f.reason) for f in F.failures})
    return [out.get(s.path) or Answer(s.path, error="the pipeline returned no result for this image") for s in samples]


def _png_base64(picture: np.ndarray, grid: np.ndarray) -> str:
    import base64

    from ..evaluate.anomaly_heatmaps import heatmap_png

    return base64.b64encode(heatmap_png(picture, grid)).decode()


def classifier_answers(model, samples: list[Sample], describe: bool) -> list[Answer]:
    """Per sample: the record ``predict_records`` gives (every class in its top-k) and, when the
    model keeps calibration scores with training rows, its out-of-distribution score."""
    from ..estimator.conformal import ood_scores
    from ..estimator.feature_blocks import featurized_records

    F = model.featurize(samples)
    records = featurized_records(model, F, len(model.classes_), describe)
    cal = calibration_of(model)
    ood = (ood_scores(cal, model.ood_logits(F), F.matrix) if cal is not None and cal.bank is not None
           and len(F.matrix) else [None] * len(F.samples))
    by_path = {r.path: Answer(r.path, record=r, ood=None if z is None else float(z)) for r, z in zip(records, ood)}
    by_path.update({r.path: Answer(r.path, record=r, error=r.error) for r in records[len(F.samples):]})
    return [by_path.get(s.path) or Answer(s.path, error="the pipeline returned no result for this image")
            for s in samples]


class SetOptions:
    """A request's ``coverage`` / ``reject_rate`` / ``set_method``, checked against what the model keeps."""

    def __init__(self, model, coverage: float | None, reject_rate: float | None, set_method: str | None):
        from ..estimator.conformal import check_rate

        self.coverage, self.reject_rate, self.method = coverage, reject_rate, set_method or "lac"
        if self.method not in SET_METHODS:
            raise ApiError(422, "invalid_set_method", f"set_method must be one of {', '.join(SET_METHODS)}, "
                           f"not {self.method[:100]!r}")
        for name, v in (("coverage", coverage), ("reject_rate", reject_rate)):
            if v is None:
                continue
            if is_detector(model):
                raise ApiError(422, f"invalid_{name}", f"{name} applies to classifiers; this server serves an "
                               "anomaly detector (its threshold was set at fit)")
            try:
                check_rate(v, name)
            except ValueError as e:
                raise ApiError(422, f"invalid_{name}", str(e)) from None
            cal = calibration_of(model)
            if cal is None or (name == "reject_rate" and cal.bank is None):
                raise ApiError(422, "no_calibration", f"{name}: this model keeps no calibration scores (an ensemble, "
                               "a paired or late fusion, or a class of one image): refit it for sets and 'unknown'")

    @property
    def asked(self) -> bool:
        return self.coverage is not None or self.reject_rate is not None


class Thresholds:
    """The calibration thresholds of one served classifier; the training images' ``unknown`` scores
    are computed once (they do not depend on the rate)."""

    def __init__(self, model):
        self.model, self._train, self._lock = model, None, threading.Lock()

    def unknown(self, reject_rate: float) -> float:
        from ..estimator.conformal import conformal_quantile, ood_train_scores

        with self._lock:
            if self._train is None:
                self._train = ood_train_scores(calibration_of(self.model))
        return conformal_quantile(self._train, 1.0 - reject_rate)

    def add_to(self, out: dict, answer: Answer, options: SetOptions) -> dict:
        """``out`` (a result's JSON) with the prediction set and ``unknown`` asked for."""
        from ..estimator.conformal import set_matrix

        classes = self.model.classes_.tolist()
        if options.coverage is not None:
            p = dict(answer.record.top_k)
            P = np.array([[p[c] for c in classes]], np.float64)
            row = set_matrix(P, calibration_of(self.model), options.coverage, options.method)[0]
            out.update(prediction_set=[_plain(c) for c, k in zip(classes, row) if k], coverage=options.coverage,
                       set_method=options.method)
        if options.reject_rate is not None:
            t = self.unknown(options.reject_rate)
            out.update(unknown=bool(answer.ood > t), ood_score=answer.ood, ood_threshold=t,
                       reject_rate=options.reject_rate)
            if out["unknown"]:
                out["predicted"] = "unknown"
        return out


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def detector_json(upload, answer: Answer) -> dict:
    """A detector's result: the upload's name and size, then its score, decision and threshold."""
    return {"file": upload.name, "width": upload.width, "height": upload.height, **answer.anomaly}
