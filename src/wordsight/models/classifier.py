"""``wordsight.Classifier``: images (or precomputed features) in, a fitted scikit-learn estimator out.

image -> encoder embedding(s) -> fusion (image / text / concat / prior) -> head -> classes.
The estimator only composes: blocks (:mod:`.blocks`), a fusion (:mod:`.fusion`), a head
(:mod:`.heads`) and, for ``fusion='prior'``, the zero-shot pipeline mixed in (:mod:`.prior`).
What it learned is one :class:`~.state.FittedState` (``state_``), which persistence writes.
Features come from the shared content-addressed cache, so fitting several heads or fusions on
the same images embeds them once.
"""
from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions

from .._util.numerics import softmax
from ..language.views import VIEW_CHOICES
from .augment import Augment
from .blocks import (
    FeatureBlocks,
    Featurized,
    add_views,
    extract_blocks,
    from_feature_set,
    input_rows,
    predicted_classes,
    prediction_records,
)
from .fusion import FUSIONS, make_fusion
from .heads import HEADS, LinearHead, LogisticHead, head_class, make_head
from .persistence import ModelFolderError, load_classifier, save_classifier
from .prior import PriorMix, choose_mix, prior_temperature
from .prior_probe import PriorProbe
from .state import FittedState

PRIOR_VIEWS = VIEW_CHOICES
# Images per class from which the prior probe takes the image head's cross-validated penalty:
# between the measured points 16 (C = 0.1 better) and 300 (the cross-validated C better);
# the numbers between were not measured (docs/benchmarks.md, few-shot and fusion tables).
PROBE_CV_PER_CLASS = 32
# Below this many labelled images per class ``wordsight fit`` uses the prior by default. On the
# few-shot protocol of docs/benchmarks.md the prior probe gained +2.9 / +2.9 / +2.0 points over image-only at
# k = 1 / 2 / 4 and +0.1 at k = 8 and 16 (0.1 at 300 per class): from 16 on it adds nothing but the
# prior's second reading of every image at full input size.
FEW_SHOT_PER_CLASS = 16


def default_fusion(labels) -> str:
    """``'prior'`` when the smallest class has fewer than :data:`FEW_SHOT_PER_CLASS` labelled
    images, else ``'image'`` (unlabelled images are not counted)."""
    from collections import Counter

    counts = Counter(lab for lab in labels if lab is not None)
    return "prior" if counts and min(counts.values()) < FEW_SHOT_PER_CLASS else "image"


def _is_array(X) -> bool:
    """A feature matrix (ndarray, sparse, nested lists of numbers), as opposed to images."""
    import scipy.sparse as sp

    if isinstance(X, np.ndarray) or sp.issparse(X):
        return True
    if isinstance(X, (list, tuple)) and X:
        first = X[0]
        return isinstance(first, (list, tuple, np.ndarray, int, float, np.number)) and not isinstance(first, str)
    return hasattr(X, "__array__") and not isinstance(X, (str, os.PathLike))


def _py(v):
    return v.item() if isinstance(v, np.generic) else v


class Classifier(ClassifierMixin, BaseEstimator):
    """Image classifier over pretrained encoders, with optional text fusion and a language prior.

    Parameters
    ----------
    encoders : str or tuple of str
        Image encoder names; several are concatenated (model fusion).
    fusion : {"image", "text", "concat", "prior"}
        What the head sees (image embeddings, the ConSE semantic vector, both), or image
        embeddings plus the zero-shot pipeline as a prior mixed into the head's logits.
    head : {"logistic", "svm", "mlp", "knn", "random_forest"}
    text_model : str
        Text encoder of the language layer (semantic vectors, zero-shot prior).
    text_weight : float
        Scale of the text block in ``concat`` fusion.
    paired_text_weight : float
        ``paired`` fusion: scale of the image's own-text block; ``late`` fusion: weight of the text
        head's log-probabilities beside the image head's (:mod:`.paired`).
    C : float, sequence of float or None
        Inverse penalty of the logistic/SVM head; ``None`` chooses it by cross-validation over a
        log grid (1e-4 .. 1e2), a sequence is the grid.
    class_weight : None, "balanced" or dict
    head_params : dict or None
        Extra head options: ``hidden`` (mlp), ``k`` (knn), ``n_estimators``/``max_depth`` (forest).
    prior_weight : "auto", "held-out" or float
        Weight of the zero-shot log-probabilities. "auto": with the logistic head, the few-shot
        learner on the zero-shot classifier (:mod:`.prior_probe`: a residual probe on the
        calibrated prior, no held-out split); with other heads, "held-out": a weight chosen on
        leave-one-shot-out folds of the training images (:mod:`.prior`).
    class_descriptions : dict or None
        Class name -> description text(s) for the zero-shot prior.
    zero_shot_method : str
        The zero-shot method ("names", "templates", "descriptions", ...); "auto" is
        "descriptions" when ``class_descriptions`` are given, else "names" (no LLM is run).
    prior_view : {"auto", "plain", "light-background", "invert"}
        The image view the zero-shot prior reads ("auto": chosen from the training images).
    augment : int
        Augmented views per training image (embedded once, cached).
    augment_params : dict or None
        :class:`Augment` fields (scale, ratio, flip, brightness, contrast, saturation, rotation, seed).
    tta : int
        Test-time augmentation: average predictions over the image and this many views.
    precision : {"fp32", "bf16", "int8", "auto"}
        Precision of the image features (:mod:`.precision`): bf16 and int8 only past the quality
        gate; "auto" the fastest this machine may use. What was used is recorded at fit and saved,
        and predictions use it again unless this names another.
    small_input : "auto", int or None
        Input size for tiny images (e.g. 28-px Fashion-MNIST) on CNNs ("auto": the extractor's
        measured choice, None: the model's full input size).
    cache : None, False, path or FeatureCache
        Feature cache (None: the default on-disk cache; False: none).
    batch_size : int or None
        Images per model call (None: measured once per machine).
    random_state : int
    quiet : bool
        No progress bars.
    """

    _parameter_constraints = {
        "encoders": [str, tuple, list],
        "fusion": [StrOptions(set(FUSIONS))],
        "head": [StrOptions(set(HEADS))],
        "text_model": [str],
        "text_weight": [Interval(Real, 0, None, closed="left")],
        "paired_text_weight": [Interval(Real, 0, None, closed="left")],
        "C": [Interval(Real, 0, None, closed="neither"), tuple, list, None],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "head_params": [dict, None],
        "prior_weight": [StrOptions({"auto", "held-out"}), Interval(Real, 0, None, closed="left")],
        "class_descriptions": [dict, str, os.PathLike, None],
        "zero_shot_method": [str],
        "prior_view": [StrOptions(set(PRIOR_VIEWS))],
        "augment": [Interval(Integral, 0, 64, closed="both")],
        "augment_params": [dict, None],
        "tta": [Interval(Integral, 0, 64, closed="both")],
        "small_input": [StrOptions({"auto"}), Interval(Integral, 16, 4096, closed="both"), None],
        "precision": [StrOptions({"fp32", "bf16", "int8", "auto"})],
        "cache": "no_validation",
        "batch_size": [Interval(Integral, 1, 4096, closed="both"), None],
        "random_state": ["random_state"],
        "quiet": ["boolean"],
    }

    def __init__(self, *, encoders=("efficientnet-lite0",), fusion="image", head="logistic",
                 text_model="minilm", text_weight=1.0, C=None, class_weight=None, head_params=None,
                 prior_weight="auto", class_descriptions=None, zero_shot_method="auto", prior_view="auto",
                 augment=0, augment_params=None, tta=0, small_input="auto", cache=None, batch_size=None,
                 random_state=0, quiet=True, precision="fp32", paired_text_weight=1.0):
        self.encoders = encoders
        self.fusion = fusion
        self.head = head
        self.text_model = text_model
        self.text_weight = text_weight
        self.C = C
        self.class_weight = class_weight
        self.head_params = head_params
        self.prior_weight = prior_weight
        self.class_descriptions = class_descriptions
        self.zero_shot_method = zero_shot_method
        self.prior_view = prior_view
        self.augment = augment
        self.augment_params = augment_params
        self.tta = tta
        self.small_input = small_input
        self.cache = cache
        self.batch_size = batch_size
        self.random_state = random_state
        self.quiet = quiet
        self.precision = precision
        self.paired_text_weight = paired_text_weight

    # ------------------------------------------------------------------ configuration
    @property
    def encoder_names(self) -> list[str]:
        """The image encoders' names as a list (``encoders`` may be one string)."""
        return [self.encoders] if isinstance(self.encoders, str) else list(self.encoders)

    @property
    def class_names(self) -> list[str]:
        """``classes_`` as a plain list of str (JSON-friendly)."""
        return [str(_py(c)) for c in self.classes_]

    @property
    def fusion_(self):
        """The fusion object of ``fusion`` (which blocks form a row, numpy and torch forms)."""
        return make_fusion(self.fusion, self.encoder_names, self.text_weight, self.paired_text_weight)

    @property
    def reads_texts(self) -> bool:
        """Whether predictions read each image's own text (fusion ``paired`` or ``late``)."""
        return bool(self.fusion_.paired)

    def check_params(self) -> None:
        """Validate the parameters (scikit-learn's declared constraints, plus a few relations)."""
        self._validate_params()
        if not self.encoder_names:
            raise ValueError("encoders must name at least one image encoder")

    def _head_params(self, **override) -> dict:
        return {"C": self.C, "class_weight": self.class_weight, "random_state": self.random_state,
                **(self.head_params or {}), **override}

    def _options(self) -> dict:
        return {"cache": self.cache, "batch_size": self.batch_size, "quiet": self.quiet}

    # ------------------------------------------------------------------ fitted state, read-only views
    @property
    def head_(self):
        """The fitted head (numpy logits, torch and ONNX forms, state)."""
        return self.state_.head

    @property
    def prior_(self):
        """The zero-shot pipeline of a ``fusion='prior'`` model (None otherwise)."""
        return self.state_.prior

    @property
    def prior_mix_(self) -> PriorMix | None:
        """How the prior is combined with the head (weight, temperatures), or None without a prior."""
        return self.state_.mix

    @property
    def feature_dims_(self) -> dict:
        """Embedding width of each image encoder, as fitted."""
        return self.state_.feature_dims

    @property
    def probs_encoder_(self):
        """The encoder whose ImageNet probabilities feed the text block and the prior (None if none has a head)."""
        return self.state_.probs_encoder

    # ------------------------------------------------------------------ features
    def extract(self, X, views: int = 0) -> FeatureBlocks:
        """Per-encoder embeddings and ImageNet probabilities of ``X`` (not fused), with
        ``views`` augmented views of each image. Reusable across fusions and heads."""
        from ..features import FeatureSet
        from ..io.sources import open_source

        if isinstance(X, FeatureBlocks):
            if views and len(X.views) < views:
                raise ValueError(f"{views} augmented views needed but the features hold {len(X.views)}")
            return X
        if isinstance(X, FeatureSet):
            if views:
                raise ValueError("augmented views need images, not a FeatureSet")
            return from_feature_set(X, self.encoder_names)
        source = open_source(X)
        from .precision import for_features

        recorded = self.state_.precisions if hasattr(self, "state_") else None
        opts = dict(self._options(), small_input=self.small_input,
                    precision=for_features(self.encoder_names, self.precision, recorded))
        blocks = extract_blocks(source, self.encoder_names, **opts)
        return add_views(blocks, source, views, Augment.from_dict(self.augment_params), **opts) if views else blocks

    def concept_bank(self):
        """The concept bank (ImageNet concepts embedded by ``text_model``) behind the words."""
        from ..language.concepts import default_bank

        return default_bank(self.text_model)

    def semantic_vectors(self, blocks: FeatureBlocks) -> np.ndarray | None:
        """The ConSE semantic vectors of ``blocks`` (None without ImageNet probabilities)."""
        if blocks.probs is None:
            return None
        from ..language import semantic_vectors

        return semantic_vectors(blocks.probs, bank=self.concept_bank())

    def fuse(self, blocks: FeatureBlocks) -> np.ndarray:
        """The fused rows the head sees."""
        fusion = self.fusion_
        semantic = self.semantic_vectors(blocks) if fusion.text else None
        if fusion.text and semantic is None:
            raise ValueError(f"fusion {self.fusion!r} needs ImageNet probabilities: one of the encoders "
                             f"{self.encoder_names} must have an ImageNet head")
        paired = self.paired_text_vectors(blocks) if fusion.paired else None
        return fusion.fuse(blocks.embeddings, semantic, len(blocks), paired)

    def paired_text_vectors(self, blocks: FeatureBlocks) -> np.ndarray:
        """The images' own texts (``Sample.text``) embedded by ``text_model``: (N, D), a NaN row
        for an image without text (see :mod:`.paired`)."""
        from .paired import paired_text_vectors

        state = getattr(self, "state_", None)
        dim = state.paired.dim if state is not None and state.paired is not None else None
        return paired_text_vectors([getattr(s, "text", None) for s in blocks.samples], self.text_model, dim,
                                   cache=self.cache is not False)

    # ------------------------------------------------------------------ the language prior
    def zero_shot_pipeline(self, view: str | None = None):
        """The (unfitted) zero-shot pipeline of this model's classes that the prior is made of."""
        from ..language.pipeline import ZeroShotPipeline

        encoder = getattr(self, "state_", None) and self.state_.probs_encoder
        return ZeroShotPipeline([str(c) for c in self.classes_], encoder=encoder or self.encoder_names[0],
                                text_model=self.text_model, method=self.zero_shot_method,
                                descriptions=self.class_descriptions, view=view or self.prior_view, center="yes",
                                **self._options())

    def prior_features(self, blocks: FeatureBlocks) -> dict[str, np.ndarray]:
        """The prior's reading of ``blocks``'s images (its view, full input size), extracted once
        per FeatureBlocks and kept there."""
        prior = self.prior_
        key = (prior.encoder, prior.view_)
        if key not in blocks.prior_features:
            blocks.prior_features[key] = self._read_prior(prior, blocks.samples)
        probs, emb = blocks.prior_features[key]
        return {"probs": probs, "embedding": emb}

    @staticmethod
    def _read_prior(prior, samples) -> tuple[np.ndarray, np.ndarray]:
        from ..io.sources import Source

        if any(getattr(s, "path", None) is None for s in samples):
            raise ValueError("the language prior reads the images, and these features carry none: pass "
                             "images, or FeatureBlocks extracted from images")
        fs = prior.read(Source(list(samples), []))
        pos = {s.path: i for i, s in enumerate(fs.samples)}
        missing = [s.path for s in samples if s.path not in pos]
        if missing:
            raise RuntimeError(f"the prior's view of {len(missing)} image(s) failed: {missing[:3]}")
        rows = [pos[s.path] for s in samples]
        return fs.probabilities[rows], fs.embeddings[rows]

    def prior_log_proba(self, blocks: FeatureBlocks) -> np.ndarray:
        """The language prior's zero-shot log-probabilities for ``blocks`` (``fusion='prior'``)."""
        return self.prior_.log_proba_reading(self.prior_features(blocks))

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Fit on images (folder, manifest, list of paths, Source, list of Sample), a FeatureSet,
        :class:`FeatureBlocks` or a precomputed feature matrix. ``y`` is optional when the images
        are labelled (class folders, a manifest's label column)."""
        self.check_params()
        if _is_array(X):
            return self._fit_array(X, y)
        from ..features import FeatureSet

        src = X
        if y is not None and not isinstance(X, (FeatureBlocks, FeatureSet)):
            src = _relabel(X, y)
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
        return self._fit_blocks(blocks, labels)

    def _fit_array(self, X, y):
        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import validate_data

        if self.fusion_.text or self.fusion_.prior or self.fusion_.paired:
            raise ValueError(f"fusion {self.fusion!r} needs images or FeatureBlocks, not a precomputed matrix "
                             "(a matrix is taken as fused image features: use fusion='image')")
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None "
                             "(a precomputed feature matrix carries no labels)")
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        classes, y_idx = np.unique(y, return_inverse=True)
        self.classes_ = classes
        self.fit_failures_ = []
        head = make_head(self.head, **self._head_params()).fit(np.asarray(X, np.float64), y_idx, len(classes))
        self.state_ = FittedState(classes, head, int(X.shape[1]))
        return self

    def _fit_blocks(self, blocks: FeatureBlocks, labels):
        from sklearn.utils.multiclass import check_classification_targets

        check_classification_targets(np.asarray([str(v) for v in labels]))
        classes = sorted(set(labels))
        if len(classes) < 2:
            raise ValueError(f"at least two classes are needed to fit, got {classes}")
        self.classes_ = np.asarray(classes)
        index = {c: i for i, c in enumerate(classes)}
        y = np.asarray([index[v] for v in labels], np.int64)
        M = self.fuse(blocks)
        view_M = [self.fuse(blocks.views[v]) for v in sorted(blocks.views)]
        X_train = np.concatenate([M, *view_M]).astype(np.float64)
        paired = None
        if self.fusion_.paired:  # a second head for the image's own text (models.paired)
            from .paired import fit_paired

            head, paired = fit_paired(self.fusion, lambda: make_head(self.head, **self._head_params()), X_train,
                                      np.tile(y, 1 + len(view_M)), len(classes),
                                      sum(v.shape[1] for v in blocks.embeddings.values()), self.paired_text_weight)
        else:
            head = make_head(self.head, **self._head_params()).fit(X_train, np.tile(y, 1 + len(view_M)), len(classes))
        self.n_features_in_ = M.shape[1]
        semantic_dim = self.concept_bank().dim if self.fusion_.text else None
        self.state_ = FittedState(self.classes_, head, int(M.shape[1]),
                                  {e: int(v.shape[1]) for e, v in blocks.embeddings.items()}, semantic_dim,
                                  blocks.probs_encoder)
        from .precision import resolve

        self.state_.precisions = resolve(self.encoder_names, self.precision)
        self.state_.paired = paired
        if self.fusion_.prior:
            self._fit_prior(blocks, M, view_M, y)
        return self

    def _fit_prior(self, blocks: FeatureBlocks, M, view_M, y) -> None:
        if self.state_.probs_encoder is None:
            raise ValueError(f"fusion 'prior' needs ImageNet probabilities: one of the encoders "
                             f"{self.encoder_names} must have an ImageNet head")
        from ..language.views import choose_view_of_samples

        view = self.prior_view if self.prior_view != "auto" else choose_view_of_samples(blocks.samples)
        pipeline = self.zero_shot_pipeline(view)
        pipeline.view_ = view  # the reading below uses it before fit
        key = (pipeline.encoder, view)
        if key not in blocks.prior_features:  # given with the blocks (explanations, tests) or read now
            blocks.prior_features[key] = self._read_prior(pipeline, blocks.samples)
        reading = dict(zip(("probs", "embedding"), blocks.prior_features[key]))
        self.state_.prior = pipeline.fit(reading=reading, view=view)
        prior = pipeline.log_proba_reading(reading)
        if self.prior_weight == "auto" and issubclass(head_class(self.head), LogisticHead):
            # the few-shot learner on the zero-shot classifier: no held-out split (models.prior_probe)
            X_train = np.concatenate([M, *view_M]).astype(np.float64)
            # With many labels the probe should be the image probe: from PROBE_CV_PER_CLASS images per
            # class it takes the penalty the image head cross-validated (at 300 Fashion-MNIST images per
            # class the fixed C = 0.1 lost 1.2 points to image-only, the head's C = 0.001 gained 0.1);
            # below, that choice is noise (k = 2..16: 0.3-0.7 points worse than 0.1), so C or 0.1.
            head_info, per_class = self.state_.head.info, int(np.bincount(y).min())
            C = self.C if isinstance(self.C, (int, float)) else None
            if "c_search" in head_info and per_class >= PROBE_CV_PER_CLASS:
                C = head_info["C"]
            probe = PriorProbe(C=C, class_weight=self.class_weight, random_state=self.random_state)
            self.state_.probe = probe.fit(X_train, np.tile(y, 1 + len(view_M)), np.tile(prior, (1 + len(view_M), 1)),
                                          len(self.classes_))
            info = probe.info
            self.state_.mix = PriorMix(float(info["strength"]), 1.0, 1.0, {"how": f"prior probe: {info['how']}",
                                       "calibration": info["calibration"], "C": info["C"]})
            return
        if self.prior_weight not in ("auto", "held-out"):
            self.state_.mix = PriorMix(float(self.prior_weight), prior_temperature(prior, y), 1.0, {"how": "given"})
            return
        head, n_classes = self.state_.head, len(self.classes_)

        def extra_views():
            if not blocks.samples or not hasattr(blocks.samples[0], "path"):
                return []
            from ..io.sources import Source

            vb = self.extract(Source(list(blocks.samples), []), views=2).views
            return [self.fuse(b) for _, b in sorted(vb.items())]

        # the fitted head's penalty, not one chosen again per fold: the held-out logits must be as
        # sure of themselves as the head that the prior is mixed into
        params = self._head_params(C=head.info.get("C", self.C))
        self.state_.mix = choose_mix(lambda: make_head(self.head, **params), M, view_M, prior, y, n_classes, head,
                                     extra_views, seed=self.random_state)

    # ------------------------------------------------------------------ predict
    def _check_fitted(self):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "state_")

    def featurize(self, X) -> Featurized:
        """Fused feature matrix of ``X``, the samples kept (row order) and the failures."""
        self._check_fitted()
        if _is_array(X):
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
        prior = self.prior_log_proba(blocks) if self.prior_ is not None else None
        rows, n = input_rows(src, blocks)
        return Featurized(M, blocks.samples, blocks.failures, blocks, prior, n, rows)

    def log_proba_featurized(self, F: Featurized) -> np.ndarray:
        """Log-probabilities of the kept rows of ``F`` (no test-time augmentation)."""
        return self.state_.logits(F.matrix, F.prior_logits)

    def proba_featurized(self, F: Featurized) -> np.ndarray:
        """Probabilities of the kept rows of ``F``: what :meth:`predict_proba` reports."""
        P = softmax(self.log_proba_featurized(F))
        if self.tta and F.blocks is not None and F.samples and hasattr(F.samples[0], "path"):
            from ..io.sources import Source

            vb = self.extract(Source(list(F.samples), []), views=self.tta).views
            for _, b in sorted(vb.items()):  # the prior reads the image itself, not its views
                P = P + softmax(self.state_.logits(self.fuse(b), F.prior_logits))
            P = P / (1 + len(vb))
        return P

    def decision_function(self, X) -> np.ndarray:
        """Log-probabilities per class, (n, n_classes); with two classes the log-odds of the second
        class, (n,), as scikit-learn expects. Rows of failed images are NaN."""
        F = self.featurize(X)
        z = F.scatter(self.log_proba_featurized(F))
        return z[:, 1] - z[:, 0] if z.shape[1] == 2 else z

    def predict_proba(self, X) -> np.ndarray:
        """(n_inputs, n_classes) probabilities, columns in ``classes_`` order; the row of an
        image that could not be read is NaN (see :meth:`featurize` for the reasons)."""
        F = self.featurize(X)
        return F.scatter(self.proba_featurized(F))

    def predict(self, X) -> np.ndarray:
        """Class per input; ``None`` for an image that could not be read."""
        return predicted_classes(self.predict_proba(X), self.classes_)

    def predict_records(self, X, top_k: int = 5, describe: bool = True) -> list:
        """One :class:`~wordsight.io.records.Prediction` per input image (inputs in order, then
        the failures): predicted class, top-k with probabilities, its description, or the error."""
        return prediction_records(self, X, top_k, describe)

    def describe(self, X) -> list[str | None]:
        """Per-image descriptions in words, one per input (``None`` for an image that could not be
        read): for a fitted model the classes that match the image best, then the ImageNet
        concepts it resembles (:func:`~wordsight.language.wording.lead_with_classes`)."""
        if not hasattr(self, "state_"):
            return self.describe_blocks(self.extract(X))
        F = self.featurize(X)
        out = [None] * F.n_inputs
        for r, t in zip(F.rows, self.describe_blocks(F.blocks, self.proba_featurized(F))):
            out[r] = t
        return out

    def describe_blocks(self, blocks: FeatureBlocks, proba=None) -> list[str | None]:
        """Descriptions of the images of ``blocks``, in order; with ``proba`` (their rows of
        :meth:`predict_proba`) they lead with the classes that match best."""
        from .words import describe_images

        return describe_images(self, blocks, proba)

    # ------------------------------------------------------------------ introspection
    def linear_head(self) -> tuple[np.ndarray, np.ndarray]:
        """(W (n_classes, n_features), b (n_classes,)) with head logits = fused @ W.T + b, for the
        linear heads (logistic, svm); the standardisation is folded in."""
        self._check_fitted()
        if not isinstance(self.head_, LinearHead):
            raise ValueError(f"head {self.head!r} is not linear: linear_head() needs 'logistic' or 'svm'")
        return self.head_.linear()

    def model_input(self, data: bytes, encoder: str | None = None) -> np.ndarray:
        """The preprocessed (3, H, W) array that ``encoder`` (default: the first) sees for the
        image bytes ``data``, exactly as feature extraction makes it (tiny images at the reduced
        input size)."""
        from ..features.engines.batch import EmbedBatch

        fn = EmbedBatch(encoder or self.encoder_names[0], engine="torch", small_input=self.small_input)
        x, err = fn.decode_for_model(data)
        if x is None:
            raise ValueError(err)
        return x

    def pipeline_spec(self) -> dict:
        """How an image becomes logits, for reproducing the path elsewhere (explanations, export)."""
        self._check_fitted()
        s = self.state_
        mix = s.mix
        return {
            "encoders": self.encoder_names,
            "fusion": self.fusion,
            "blocks": self.fusion_.layout(s.feature_dims, s.text_dim, s.paired and s.paired.dim) if s.feature_dims
            else [{"name": "precomputed", "start": 0, "stop": s.n_features}],
            "text_weight": float(self.text_weight),
            "head": self.head,
            "prior": None if mix is None else {
                "formula": "log_softmax(head_temperature * head) + weight * log_softmax(temperature * prior_log_proba)",
                "weight": mix.weight, "temperature": mix.temperature, "head_temperature": mix.head_temperature,
                "encoder": s.prior.encoder, "view": s.prior.view_, "ways": list(s.prior.ways_)},
            "classes": [_py(c) for c in self.classes_],
        }

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


def _relabel(X, y):
    """The source of ``X`` with labels from ``y`` (one per listed image, in order)."""
    from dataclasses import replace

    from ..io.sources import Source, open_source

    src = open_source(X)
    y = list(y)
    if len(y) != len(src.samples):
        raise ValueError(f"y has {len(y)} labels but {len(src.samples)} images were listed")
    return Source([replace(s, label=lab) for s, lab in zip(src.samples, y)], list(src.problems))
