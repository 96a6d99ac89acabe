"""What the Classifier keeps for prediction sets and "unknown", and how it answers with it.

:func:`fit_rows` and :func:`calibrate` are the fit's side (the rows the head learns from; the
out-of-fold or held-out scores and training rows kept); :class:`ConformalViews` is the fitted
model's side (``predict(X, reject_rate=...)``, ``ood_score``, ``predict_set``). The maths is
:mod:`.conformal`. Kept apart from the Classifier so that it only composes.
"""
from __future__ import annotations

import numpy as np

from .feature_blocks import Featurized


def fit_rows(model, y_idx) -> np.ndarray:
    """The rows the head is fitted on: all, or all but the held-out calibration split."""
    from .conformal import held_out_split

    if not isinstance(model.calibration, float):
        return np.arange(len(y_idx))
    if model.fusion_.paired:
        raise ValueError(f"calibration={model.calibration:g}: the {model.fusion_.name!r} fusion keeps no "
                         "calibration scores: use calibration=None")
    return held_out_split(y_idx, model.calibration, model.classes_, model.random_state)


def calibrate(model, head, M, y_idx, fit_rows=None, blocks=None):
    """Scores for prediction sets and "unknown" (:mod:`.conformal`): out-of-fold (of the head,
    or, with a prior, of the whole model refitted per fold), or of the held-out split; None when
    ``calibration`` is None or for the paired and late fusions."""
    from .conformal import held_out, out_of_fold, out_of_fold_model

    fusion = model.fusion_
    if model.calibration is None or fusion.paired:
        return None
    M = np.asarray(M, np.float64)
    if isinstance(model.calibration, float):
        held = np.setdiff1d(np.arange(len(y_idx)), fit_rows)
        logits = (np.log(np.clip(model.predict_proba(blocks.take(held)), 1e-300, None)) if fusion.prior
                  else head.logits(M[held]))
        return held_out(logits, M, y_idx, fit_rows, model.random_state)
    if fusion.prior:
        return out_of_fold_model(model, blocks, M, y_idx)
    return out_of_fold(head, M, y_idx, len(model.classes_), model.random_state)


class ConformalViews:
    """Mixin of the Classifier: "unknown" and prediction sets from the scores a fit kept."""

    def ood_logits(self, F: Featurized) -> np.ndarray:
        """The scores the out-of-distribution score reads for the kept rows of ``F``: the head's
        logits, or with a prior the model's log-probabilities (what its calibration scores are)."""
        if self.fusion_.prior:
            return self.log_proba_featurized(F)
        return self.state_.head.logits(np.asarray(F.matrix, np.float64))

    def predict(self, X, reject_rate: float | None = None) -> np.ndarray:
        """Class per input; ``None`` for an image that could not be read. With ``reject_rate``,
        ``"unknown"`` for an image less like the training classes than all but that fraction of
        the training images (:meth:`ood_score`)."""
        pred = self.task_.decide(self.predict_proba(X), self.classes_)
        if reject_rate is None:
            return pred
        from .conformal import ood_threshold

        unknown = self.ood_score(X) > ood_threshold(self.calibration_scores(), reject_rate)
        return np.where(unknown, "unknown", pred.astype(object)).astype(object)

    # ------------------------------------------------------------------ sets and unknown (:mod:`.conformal`)
    def calibration_scores(self):
        """The out-of-fold scores kept at fit (:class:`~.conformal.Calibration`), or a one-line
        ValueError saying why there are none."""
        self._check_fitted()
        if self.state_.calibration is None:
            raise ValueError("this model has no calibration scores (fitted with a paired or late fusion, with a "
                             "class of one image, or saved before they were kept): refit it for prediction sets "
                             "and 'unknown'")
        return self.state_.calibration

    def ood_score(self, X, score: str | None = None) -> np.ndarray:
        """Out-of-distribution score per input (``knn``, ``energy`` or ``msp``: :mod:`.conformal`;
        higher = less like the training classes); NaN for an image that could not be read."""
        from .conformal import DEFAULT_OOD, ood_scores

        cal = self.calibration_scores()
        F = self.featurize(X)
        z = ood_scores(cal, self.ood_logits(F), F.matrix, score or DEFAULT_OOD)
        return F.scatter(z[:, None])[:, 0]

    def predict_set_matrix(self, X, coverage: float = 0.9, method: str = "lac") -> np.ndarray:
        """(n, n_classes) booleans: the conformal prediction set of each input (columns in
        ``classes_`` order; an unreadable image's row is all False)."""
        from .conformal import set_matrix

        cal = self.calibration_scores()
        return set_matrix(self.predict_proba(X), cal, coverage, method)

    def predict_set(self, X, coverage: float = 0.9, method: str = "lac") -> list[list]:
        """The classes of each input's prediction set, which holds the true class with probability
        ``coverage`` (``method``: ``"lac"`` or ``"aps"``)."""
        return [[c for c, k in zip(self.classes_.tolist(), row) if k]
                for row in self.predict_set_matrix(X, coverage, method)]
