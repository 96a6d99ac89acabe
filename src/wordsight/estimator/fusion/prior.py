"""The ``prior`` fusion: image blocks for the head, plus the zero-shot language prior mixed into
its logits (:mod:`wordsight.estimator.prior_mix`, :mod:`wordsight.estimator.prior_probe`).

The prior is a :class:`~wordsight.zeroshot.pipeline.ZeroShotPipeline` of the model's classes that
reads each image itself (its ``view``, full input size; the reading is kept in the
:class:`~..blocks.FeatureBlocks`). How it is combined with the head is chosen on the training
images: ``weight="auto"`` with a logistic head fits the few-shot prior probe (the prior's weight by
leave-one-out on the labelled images, :mod:`wordsight.estimator.prior_strength`);
with other heads, or ``"held-out"``, a weight chosen on leave-one-shot-out folds; a number is used
as given.
"""
from __future__ import annotations

import os
from numbers import Real

import numpy as np
from sklearn.base import clone
from sklearn.utils._param_validation import Interval, StrOptions

from ...features.views import VIEW_CHOICES
from ..heads import LogisticHead
from ..label_prior_probe import LabelPriorProbe
from ..prior_mix import PriorMix, choose_mix, prior_temperature
from ..prior_probe import PriorProbe
from .base import Fusion, training_rows

PRIOR_VIEWS = VIEW_CHOICES
# Images per class from which the prior probe takes the image head's cross-validated penalty:
# between the measured points 16 (C = 0.1 better) and 300 (the cross-validated C better);
# the numbers between were not measured (README, few-shot and fusion tables).
PROBE_CV_PER_CLASS = 32


class PriorFusion(Fusion):
    """Image blocks, and the zero-shot prior mixed into the head's logits.

    Parameters
    ----------
    view : {"auto", "plain", "light-background", "invert"}
        The image view the prior reads ("auto": chosen from the training images).
    descriptions : dict, path or None
        Class name -> description text(s) for the zero-shot prior.
    weight : "auto", "held-out" or float
        Weight of the zero-shot log-probabilities. "auto": with the logistic head, the few-shot
        learner on the zero-shot classifier (the image probe plus the calibrated prior, its weight
        chosen by leave-one-out on the labelled images); with other heads, "held-out": a weight chosen on leave-one-shot-out folds.
    method : str
        The zero-shot method ("names", "templates", "descriptions", ...); "auto" is
        "descriptions" when ``descriptions`` are given, else "names" (no LLM is run).
    """

    name, prior = "prior", True
    _parameter_constraints = {
        "view": [StrOptions(set(PRIOR_VIEWS))],
        "descriptions": [dict, str, os.PathLike, None],
        "weight": [StrOptions({"auto", "held-out"}), Interval(Real, 0, None, closed="left")],
        "method": [str],
    }
    prior_ = mix_ = probe_ = None  # what fit learns: the zero-shot pipeline, its mixing or its probe

    def __init__(self, view="auto", descriptions=None, weight="auto", method="auto"):
        self.view = view
        self.descriptions = descriptions
        self.weight = weight
        self.method = method

    # ------------------------------------------------------------------ the prior's pipeline and reading
    def pipeline(self, model, encoder: str, view: str):
        """The (unfitted) zero-shot pipeline of ``model``'s classes that the prior is made of."""
        return model.task_.language_prior([str(c) for c in model.classes_], encoder=encoder,
                                           text_model=model.text_model, method=self.method,
                                           descriptions=self.descriptions, view=view, center=model.task_.prior_center,
                                           cache=model.cache,
                                           batch_size=model.batch_size, quiet=model.quiet)

    @staticmethod
    def prior_features(pipeline, blocks) -> dict[str, np.ndarray]:
        """``pipeline``'s reading of ``blocks``'s images (its view, full input size), extracted once
        per FeatureBlocks and kept there."""
        key = (pipeline.encoder, pipeline.view_)
        if key not in blocks.prior_features:  # given with the blocks (explanations, tests) or read now
            blocks.prior_features[key] = _read(pipeline, blocks.samples)
        probs, emb = blocks.prior_features[key]
        return {"probs": probs, "embedding": emb}

    def prior_logits(self, model, blocks) -> np.ndarray:
        """The fitted prior's zero-shot log-probabilities for ``blocks`` (None without a prior)."""
        if self.prior_ is None:
            return None
        return self.prior_.log_proba_reading(self.prior_features(self.prior_, blocks))

    # ------------------------------------------------------------------ fit
    def fit(self, model, blocks, M, view_M, y, head):
        """The head on the image rows, then the prior and how it is mixed in (probe or weight)."""
        template = head
        head = super().fit(model, blocks, M, view_M, y, clone(template))
        if blocks.probs_encoder is None:
            raise ValueError(f"fusion 'prior' needs ImageNet probabilities: one of the encoders "
                             f"{list(self.encoders)} must have an ImageNet head")
        from ...features.views import choose_view_of_samples

        view = self.view if self.view != "auto" else choose_view_of_samples(blocks.samples)
        pipeline = self.pipeline(model, blocks.probs_encoder, view)
        pipeline.view_ = view  # the reading below uses it before fit
        reading = self.prior_features(pipeline, blocks)
        self.prior_ = pipeline.fit(reading=reading, view=view)
        prior = pipeline.log_proba_reading(reading)
        if self.weight == "auto" and isinstance(template, LogisticHead):
            self.probe_, self.mix_ = self._fit_probe(template, head, M, view_M, y, prior, len(model.classes_))
            if y.ndim == 2:  # label sets: kept for the thresholds' out_of_fold_proba, then dropped
                self._probe_rows = (view_M, prior)
        elif self.weight not in ("auto", "held-out"):
            self.mix_ = PriorMix(float(self.weight), prior_temperature(prior, y), 1.0, {"how": "given"})
        else:
            self.mix_ = self._held_out_mix(model, blocks, template, head, M, view_M, y, prior)
        return head

    @staticmethod
    def _fit_probe(template, head, M, view_M, y, prior, n_classes) -> tuple[PriorProbe, PriorMix]:
        """The few-shot learner on the zero-shot classifier (:mod:`..prior_probe`)."""
        # With many labels the probe should be the image probe: from PROBE_CV_PER_CLASS images per
        # class it takes the penalty the image head cross-validated (at 300 Fashion-MNIST images per
        # class the fixed C = 0.1 lost 1.2 points to image-only, the head's C = 0.001 gained 0.1);
        # below, that choice is noise (k = 2..16: 0.3-0.7 points worse than 0.1), so C or 0.1.
        C = template.C if isinstance(template.C, (int, float)) else None
        # label sets (multi-label): the fewest positive images of a label, and a probe per label
        fewest = int(y.sum(0).min()) if y.ndim == 2 else int(np.bincount(y).min())
        if "c_search" in head.info and fewest >= PROBE_CV_PER_CLASS:
            C = head.info["C"]
        probe = (LabelPriorProbe if y.ndim == 2 else PriorProbe)(C=C, class_weight=template.class_weight,
                                                                 random_state=template.random_state)
        X, Y = training_rows(M, view_M, y)
        probe.fit(X, Y, np.tile(prior, (1 + len(view_M), 1)), n_classes)
        info = probe.info
        return probe, PriorMix(float(info["strength"]), 1.0, 1.0, {"how": f"prior probe: {info['how']}",
                                                                   "calibration": info["calibration"], "C": info["C"]})

    def out_of_fold_proba(self, M, Y, splits):
        """The label-set probe's out-of-fold probabilities of its training rows, for the task's
        thresholds: per fold a probe with the fitted one's options (and ``C``) fitted on the other
        folds' rows and views with their prior log-odds, as :meth:`fit` fitted it. Without it the
        thresholds came from the image head's probabilities, which the model does not output.
        None for a single-label probe or a mix (the head's own serve there)."""
        rows, self._probe_rows = getattr(self, "_probe_rows", None), None
        if not isinstance(self.probe_, LabelPriorProbe) or rows is None:
            return None
        view_M, prior = rows
        proba = np.empty(np.shape(Y), np.float64)
        for train, test in splits:
            X, Yt = training_rows(M[train], [v[train] for v in view_M], Y[train])
            part = LabelPriorProbe(**{**self.probe_.params(), "C": self.probe_.info["C"]})
            part.fit(X, Yt, np.tile(prior[train], (1 + len(view_M), 1)), Y.shape[1])
            proba[test] = part.predict_proba(M[test], prior[test])
        return proba

    @staticmethod
    def _held_out_mix(model, blocks, template, head, M, view_M, y, prior) -> PriorMix:
        def extra_views():
            if not blocks.samples or not hasattr(blocks.samples[0], "path"):
                return []
            from ...io.sources import Source

            vb = model.extract(Source(list(blocks.samples), []), views=2).views
            return [model.fuse(b) for _, b in sorted(vb.items())]

        # the fitted head's penalty, not one chosen again per fold: the held-out logits must be as
        # sure of themselves as the head that the prior is mixed into
        params = {"C": head.info.get("C", template.C)} if "C" in template.get_params() else {}
        return choose_mix(lambda: clone(template).set_params(**params), M, view_M, prior, y, len(model.classes_),
                          head, extra_views, seed=model.random_state)

    # ------------------------------------------------------------------ predict
    def logits(self, head, fused, prior_logits):
        """The probe's, or the head's mixed with the prior (the head's alone without prior logits)."""
        if self.probe_ is not None and prior_logits is not None:
            return self.probe_.logits(np.asarray(fused, np.float64), prior_logits)
        if prior_logits is None or self.mix_ is None:
            return super().logits(head, fused, None)
        return self.mix_(head.logits(np.asarray(fused, np.float64)), prior_logits)

    def logits_torch(self, head, fused, prior_logits, torch_form):
        """The same in torch (the head's own scores without prior logits)."""
        if prior_logits is None or self.mix_ is None and self.probe_ is None:
            return super().logits_torch(head, fused, None, torch_form)
        if self.probe_ is not None:
            return torch_form(self.probe_)(fused, prior_logits)
        return self.mix_.torch(torch_form(head)(fused), prior_logits)


def _read(pipeline, samples) -> tuple[np.ndarray, np.ndarray]:
    """The prior's (probabilities, embeddings) of ``samples``, in order."""
    from ...io.sources import Source

    if any(getattr(s, "path", None) is None for s in samples):
        raise ValueError("the language prior reads the images, and these features carry none: pass "
                         "images, or FeatureBlocks extracted from images")
    fs = pipeline.read(Source(list(samples), []))
    pos = {s.path: i for i, s in enumerate(fs.samples)}
    missing = [s.path for s in samples if s.path not in pos]
    if missing:
        raise RuntimeError(f"the prior's view of {len(missing)} image(s) failed: {missing[:3]}")
    rows = [pos[s.path] for s in samples]
    return fs.probabilities[rows], fs.embeddings[rows]
