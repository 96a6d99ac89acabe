"""``wordsight.Classifier``: images (or precomputed features) in, a fitted scikit-learn estimator out.

image -> encoder embedding(s) -> fusion -> head -> the task's output. The estimator only
composes: blocks (:mod:`.blocks`), a task (:mod:`.tasks`: targets, output, answer), a fusion
(:mod:`.fusion`: the row the head sees, what it learns besides, how scores become
log-probabilities) and a head (:mod:`.heads`). Fusion and head are given by name (their
defaults) or as objects with their own parameters (``head__C``, ``fusion__weight`` reach them).
What it learned is one :class:`~.state.FittedState` (``state_``), which persistence writes.
Features come from the shared content-addressed cache, so fitting several heads or fusions on
the same images embeds them once.
"""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils._param_validation import Interval, StrOptions

from .conformal_views import ConformalViews, fit_rows
from .feature_blocks import (
    FeatureBlocks,
    Featurized,
    input_rows,
    is_array,
    prediction_records,
    relabel,
)
from .featurizer import Featurizer
from .fitted_views import FittedViews
from .fusion import FUSIONS, Fusion, make_fusion
from .heads import HEADS, Head, head_class, head_taking
from .saved.persistence import ModelFolderError, load_classifier, save_classifier
from .state import FittedState
from .tasks import Task, make_task

# Below this many labelled images per class ``wordsight fit`` uses the prior by default. On the
# few-shot protocol of docs/benchmarks.md the prior probe gained +2.9 / +2.9 / +2.0 points over image-only at
# k = 1 / 2 / 4 and +0.1 at k = 8 and 16 (0.1 at 300 per class): from 16 on it adds nothing but the
# prior's second reading of every image at full input size.
FEW_SHOT_PER_CLASS = 16


def default_fusion(labels) -> str:
    """``'prior'`` when the smallest class has fewer than :data:`FEW_SHOT_PER_CLASS` labelled
    images, else ``'image'`` (unlabelled images are not counted). Label sets (multi-label) count
    each label's positive images: the same rule per label."""
    from collections import Counter

    counts = Counter()
    for lab in labels:
        if lab is not None:
            counts.update(set(lab) if isinstance(lab, (tuple, list, set, frozenset)) else [lab])
    return "prior" if counts and min(counts.values()) < FEW_SHOT_PER_CLASS else "image"


def build_head(head, random_state) -> Head:
    """A fresh copy of ``head`` (a :class:`Head`), or the head registered as ``head`` (a name)
    with its defaults and ``random_state`` where it takes one."""
    return clone(head) if isinstance(head, Head) else head_taking(head, random_state=random_state)


class Classifier(Featurizer, FittedViews, ConformalViews, ClassifierMixin, BaseEstimator):
    """Image classifier over pretrained encoders: a task, a fusion and a head.

    Parameters
    ----------
    encoders : str or tuple of str
        Image encoder names; several are concatenated (model fusion).
    task : "single-label" or Task
        What a label is and what the model answers (:mod:`.tasks`).
    fusion : {"image", "text", "concat", "prior", "paired", "late"} or Fusion
        What the head sees and what is learned besides (:mod:`.fusion`), e.g.
        ``PriorFusion(weight="held-out", descriptions=...)``, ``ConcatFusion(text_weight=0.5)``.
    head : {"logistic", "svm", "mlp", "knn", "random_forest", "mil"} or Head
        E.g. ``LogisticHead(C=0.1)``. A head given by name takes this model's ``random_state``.
        ``mil`` scores the tiles of a tile bag among the encoders (``tilebag:2:<encoder>``).
    text_model : str
        Text encoder of the language layer (semantic vectors, zero-shot prior, paired texts).
    augment : int
        Augmented views per training image (embedded once, cached).
    augment_params : dict or None
        :class:`Augment` fields (scale, ratio, flip, brightness, contrast, saturation, rotation, seed).
    tta : int
        Test-time augmentation: average predictions over the image and this many views.
    small_input : "auto", int or None
        Input size for tiny images (e.g. 28-px Fashion-MNIST) on CNNs ("auto": the extractor's
        measured choice, None: the model's full input size).
    precision : {"fp32", "bf16", "int8", "auto"}
        Precision of the image features (:mod:`.precision`): bf16 and int8 only past the quality
        gate; "auto" (the default) the fastest this machine may use ($WORDSIGHT_PRECISION pins it);
        "fp32" bit-for-bit reproducible features. What was used is recorded at fit and saved, and
        predictions use it again unless this names another.
    cache : None, False, path or FeatureCache
        Feature cache (None: the default on-disk cache; False: none).
    batch_size : int or None
        Images per model call (None: measured once per machine).
    random_state : int
    quiet : bool
        No progress bars.
    calibration : "cross", float in (0, 1) or None
        Scores kept for prediction sets and "unknown" (:mod:`.conformal`): "cross" out-of-fold
        scores of the fit's own images; a fraction (0.2) held out of the head's fit, stratified;
        None none.
    """

    _parameter_constraints = {
        "encoders": [str, tuple, list],
        "task": [str, Task],
        "fusion": [StrOptions(set(FUSIONS)), Fusion],
        "head": [StrOptions(set(HEADS)), Head],
        "text_model": [str],
        "augment": [Interval(Integral, 0, 64, closed="both")],
        "augment_params": [dict, None],
        "tta": [Interval(Integral, 0, 64, closed="both")],
        "small_input": [StrOptions({"auto"}), Interval(Integral, 16, 4096, closed="both"), None],
        "precision": [StrOptions({"fp32", "bf16", "int8", "auto"})],
        "cache": "no_validation",
        "batch_size": [Interval(Integral, 1, 4096, closed="both"), None],
        "random_state": ["random_state"],
        "quiet": ["boolean"],
        "calibration": [StrOptions({"cross"}), Interval(Real, 0, 1, closed="neither"), None],
    }

    def __init__(self, *, encoders=("efficientnet-lite0",), task="single-label", fusion="image", head="logistic",
                 text_model="minilm", augment=0, augment_params=None, tta=0, small_input="auto", precision="auto",
                 cache=None, batch_size=None, random_state=0, quiet=True, calibration="cross"):
        self.encoders = encoders
        self.task = task
        self.fusion = fusion
        self.head = head
        self.text_model = text_model
        self.augment = augment
        self.augment_params = augment_params
        self.tta = tta
        self.small_input = small_input
        self.precision = precision
        self.cache = cache
        self.batch_size = batch_size
        self.random_state = random_state
        self.quiet = quiet
        self.calibration = calibration

    # ------------------------------------------------------------------ configuration
    @property
    def task_(self) -> Task:
        """The :class:`~.tasks.Task` of ``task`` (targets, output, answer, metrics); once fitted,
        the task as fitted (e.g. a multi-label model's per-label thresholds)."""
        fitted = getattr(self.state_, "task", None) if hasattr(self, "state_") else None
        return fitted if fitted is not None else make_task(self.task)

    @property
    def fusion_(self) -> Fusion:
        """The fitted fusion; before fit, the unfitted one over this model's encoders (which blocks
        form a row: ``fuse``, ``fuse_torch``, ``layout``)."""
        return self.state_.fusion if hasattr(self, "state_") else make_fusion(self.fusion).bind(self.encoder_names)

    @property
    def fusion_name(self) -> str:
        """The fusion's registry name (``fusion`` may be an object)."""
        return self.fusion_.name

    @property
    def head_name(self) -> str:
        """The head's registry name (``head`` may be an object)."""
        return self.head.name if isinstance(self.head, Head) else head_class(self.head).name

    def unfitted_head(self) -> Head:
        """A fresh copy of ``head`` (see :func:`build_head`)."""
        return build_head(self.head, self.random_state)

    @property
    def reads_texts(self) -> bool:
        """Whether predictions read each image's own text (fusion ``paired`` or ``late``)."""
        return bool(self.fusion_.paired)

    def set_params(self, **params):
        """scikit-learn's; ``fusion__weight=...`` / ``head__C=...`` also reach a fusion or head
        given by name (built first, as :meth:`fit` would build it)."""
        nested = {k.partition("__")[0] for k in params if "__" in k}
        if "fusion" in nested and isinstance(params.get("fusion", self.fusion), str):
            params["fusion"] = make_fusion(params.get("fusion", self.fusion))
        if "head" in nested and isinstance(params.get("head", self.head), str):
            params["head"] = build_head(params.get("head", self.head), params.get("random_state", self.random_state))
        return super().set_params(**params)

    def check_params(self) -> None:
        """Validate the parameters (scikit-learn's declared constraints, the task's, fusion's and
        head's), with the reason in one line."""
        self._validate_params()
        if not self.encoder_names:
            raise ValueError("encoders must name at least one image encoder")
        make_fusion(self.fusion)._validate_params()
        make_task(self.task).check_model(self)
        self.unfitted_head()._validate_params()

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Fit on images (folder, manifest, list of paths, Source, list of Sample), a FeatureSet,
        :class:`FeatureBlocks` or a precomputed feature matrix. ``y`` is optional when the images
        are labelled (class folders, a manifest's label column)."""
        self.check_params()
        vars(self).pop("state_", None)  # a refit starts from the parameters, not the last fit
        if is_array(X):
            return self._fit_array(X, y)
        from ..features import FeatureSet

        src = relabel(X, y) if y is not None and not isinstance(X, (FeatureBlocks, FeatureSet)) else X
        blocks = self.extract(src, views=self.augment)
        labels = list(y) if (y is not None and isinstance(X, FeatureBlocks)) else blocks.labels
        if not len(blocks):
            raise ValueError(
                "no training image could be read: " + "; ".join(f"{p.path}: {p.reason}" for p in blocks.failures[:5])
            )
        if any(lab is None for lab in labels):
            n = sum(lab is None for lab in labels)
            raise ValueError(f"{n} training image(s) have no label: give y, class sub-folders or a manifest label column")
        self.fit_failures_ = list(blocks.failures)
        task = make_task(self.task)
        self.classes_, y_idx = task.encode(labels)
        fusion = self.fusion_
        M = self.fuse(blocks)
        view_M = [self.fuse(blocks.views[v]) for v in sorted(blocks.views)]
        rows = fit_rows(self, y_idx)
        fit_blocks = blocks if len(rows) == len(y_idx) else blocks.take(rows)
        dims, text_dim = {e: int(v.shape[1]) for e, v in blocks.embeddings.items()}, (
            self.concept_bank().dim if fusion.text else None)
        head = fusion.fit(self, fit_blocks, M[rows], [v[rows] for v in view_M], y_idx[rows],
                          self.unfitted_head().for_row(fusion.layout(dims, text_dim)))
        self.n_features_in_ = M.shape[1]
        from .precision import resolve

        self.state_ = FittedState(self.classes_, head, int(M.shape[1]), dims, text_dim, blocks.probs_encoder, fusion,
                                  resolve(self.encoder_names, self.precision),
                                  task=task.fit_decisions(self, fusion, head, M[rows], y_idx[rows]))
        self.state_.calibration = task.calibrate(self, head, M, y_idx, rows, blocks)
        return self

    def _fit_array(self, X, y):
        fusion = self.fusion_
        if fusion.needs_images:
            raise ValueError(f"fusion {fusion.name!r} needs images or FeatureBlocks, not a precomputed matrix "
                             "(a matrix is taken as fused image features: use fusion='image')")
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None "
                             "(a precomputed feature matrix carries no labels)")
        task = make_task(self.task)
        X, y = task.validate(self, X, y)
        self.classes_, y_idx = task.encode(y)
        self.fit_failures_ = []
        rows = fit_rows(self, y_idx)
        X = np.asarray(X, np.float64)
        head = fusion.fit(self, None, X[rows], [], y_idx[rows], self.unfitted_head())
        self.state_ = FittedState(self.classes_, head, int(X.shape[1]), fusion=fusion,
                                  calibration=task.calibrate(self, head, X, y_idx, rows, None),
                                  task=task.fit_decisions(self, fusion, head, X[rows], y_idx[rows]))
        return self

    # ------------------------------------------------------------------ predict
    def _check_fitted(self):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "state_")

    def featurize(self, X) -> Featurized:
        """Fused feature matrix of ``X``, the samples kept (row order) and the failures."""
        self._check_fitted()
        if is_array(X):
            from sklearn.utils.validation import validate_data

            M = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
            return Featurized(np.asarray(M, np.float32), [None] * len(M), [], None, None, len(M), np.arange(len(M)))
        from ..features import FeatureSet
        from ..io.sources import open_source

        src = None if isinstance(X, (FeatureBlocks, FeatureSet)) else open_source(X)
        blocks = self.extract(X if src is None else src)
        M = self.fuse(blocks)
        if M.shape[1] != self.n_features_in_:
            raise ValueError(f"fused features have {M.shape[1]} columns; this model was fitted on {self.n_features_in_}")
        prior = self.fusion_.prior_logits(self, blocks)
        rows, n = input_rows(src, blocks)
        return Featurized(M, blocks.samples, blocks.failures, blocks, prior, n, rows)

    def log_proba_featurized(self, F: Featurized) -> np.ndarray:
        """Log-probabilities of the kept rows of ``F`` (no test-time augmentation)."""
        return self.state_.logits(F.matrix, F.prior_logits)

    def proba_featurized(self, F: Featurized) -> np.ndarray:
        """Probabilities of the kept rows of ``F``: what :meth:`predict_proba` reports."""
        output = self.task_.output
        P = output(self.log_proba_featurized(F))
        if self.tta and F.blocks is not None and F.samples and hasattr(F.samples[0], "path"):
            from ..io.sources import Source

            vb = self.extract(Source(list(F.samples), []), views=self.tta).views
            for _, b in sorted(vb.items()):  # the prior reads the image itself, not its views
                P = P + output(self.state_.logits(self.fuse(b), F.prior_logits))
            P = P / (1 + len(vb))
        return P

    def decision_function(self, X) -> np.ndarray:
        """Log-probabilities per class, (n, n_classes); with two classes the log-odds of the second
        class, (n,), as scikit-learn expects. Rows of failed images are NaN."""
        F = self.featurize(X)
        z = F.scatter(self.log_proba_featurized(F))
        return z[:, 1] - z[:, 0] if z.shape[1] == 2 and not self.task_.label_sets else z  # label sets: one per label

    def predict_proba(self, X) -> np.ndarray:
        """(n_inputs, n_classes) probabilities, columns in ``classes_`` order; the row of an
        image that could not be read is NaN (see :meth:`featurize` for the reasons)."""
        F = self.featurize(X)
        return F.scatter(self.proba_featurized(F))

    def predict_records(self, X, top_k: int = 5, describe: bool = True) -> list:
        """One :class:`~wordsight.io.records.Prediction` per input image (inputs in order, then
        the failures): predicted class, top-k with probabilities, its description, or the error."""
        return prediction_records(self, X, top_k, describe)

    # ------------------------------------------------------------------ persistence
    def save(self, folder) -> str:
        """Write the model to ``folder`` (JSON + safetensors + checksums; see :mod:`.persistence`)."""
        return save_classifier(self, folder)

    @classmethod
    def load(cls, folder) -> "Classifier":
        """A model saved by :meth:`save`, every file verified; any refusal is one
        :class:`~.persistence.ModelFolderError` naming the folder and the problem (an ensemble's
        folder, ``fit --search``, too: ``wordsight.load`` reads every kind)."""
        try:
            return load_classifier(folder, cls)
        except ModelFolderError:
            raise
        except Exception as e:
            raise ModelFolderError(f"{folder}: cannot load the model ({type(e).__name__}: {e})") from None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = False
        return tags
