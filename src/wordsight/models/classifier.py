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

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils._param_validation import Interval, StrOptions

from .augment import Augment
from .blocks import (
    FeatureBlocks,
    Featurized,
    add_views,
    extract_blocks,
    from_feature_set,
    input_rows,
    is_array,
    prediction_records,
    relabel,
)
from .fusion import FUSIONS, Fusion, make_fusion
from .heads import HEADS, Head, LinearHead, head_class, head_taking
from .persistence import ModelFolderError, load_classifier, save_classifier
from .state import FittedState
from .tasks import Task, make_task

# Below this many labelled images per class ``wordsight fit`` uses the prior by default. On the
# README's few-shot protocol the prior probe gained +2.9 / +2.9 / +2.0 points over image-only at
# k = 1 / 2 / 4 and +0.1 at k = 8 and 16 (0.1 at 300 per class): from 16 on it adds nothing but the
# prior's second reading of every image at full input size.
FEW_SHOT_PER_CLASS = 16


def default_fusion(labels) -> str:
    """``'prior'`` when the smallest class has fewer than :data:`FEW_SHOT_PER_CLASS` labelled
    images, else ``'image'`` (unlabelled images are not counted)."""
    from collections import Counter

    counts = Counter(lab for lab in labels if lab is not None)
    return "prior" if counts and min(counts.values()) < FEW_SHOT_PER_CLASS else "image"


def build_head(head, random_state) -> Head:
    """A fresh copy of ``head`` (a :class:`Head`), or the head registered as ``head`` (a name)
    with its defaults and ``random_state`` where it takes one."""
    return clone(head) if isinstance(head, Head) else head_taking(head, random_state=random_state)


def _py(v):
    return v.item() if isinstance(v, np.generic) else v


class Classifier(ClassifierMixin, BaseEstimator):
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
    head : {"logistic", "svm", "mlp", "knn", "random_forest"} or Head
        E.g. ``LogisticHead(C=0.1)``. A head given by name takes this model's ``random_state``.
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
        gate; "auto" the fastest this machine may use. What was used is recorded at fit and saved,
        and predictions use it again unless this names another.
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
    }

    def __init__(self, *, encoders=("efficientnet-lite0",), task="single-label", fusion="image", head="logistic",
                 text_model="minilm", augment=0, augment_params=None, tta=0, small_input="auto", precision="fp32",
                 cache=None, batch_size=None, random_state=0, quiet=True):
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
    def task_(self) -> Task:
        return make_task(self.task)

    @property
    def fusion_(self) -> Fusion:
        """The fitted fusion; before fit, the unfitted one over this model's encoders (which blocks
        form a row: ``fuse``, ``fuse_torch``, ``layout``)."""
        return self.state_.fusion if hasattr(self, "state_") else make_fusion(self.fusion).bind(self.encoder_names)

    @property
    def fusion_name(self) -> str:
        return self.fusion_.name

    @property
    def head_name(self) -> str:
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
        make_task(self.task)
        make_fusion(self.fusion)._validate_params()
        self.unfitted_head()._validate_params()

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
    def prior_mix_(self):
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
        from .precision import for_features

        if isinstance(X, FeatureBlocks):
            if views and len(X.views) < views:
                raise ValueError(f"{views} augmented views needed but the features hold {len(X.views)}")
            return X
        if isinstance(X, FeatureSet):
            if views:
                raise ValueError("augmented views need images, not a FeatureSet")
            return from_feature_set(X, self.encoder_names)
        source = open_source(X)
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
            raise ValueError(f"fusion {fusion.name!r} needs ImageNet probabilities: one of the encoders "
                             f"{self.encoder_names} must have an ImageNet head")
        paired = self.paired_text_vectors(blocks) if fusion.paired else None
        return fusion.fuse(blocks.embeddings, semantic, len(blocks), paired)

    def paired_text_vectors(self, blocks: FeatureBlocks) -> np.ndarray:
        """The images' own texts (``Sample.text``) embedded by ``text_model``: (N, D), a NaN row
        for an image without text (see :mod:`.paired`)."""
        from .paired import paired_text_vectors

        paired = self.state_.paired if hasattr(self, "state_") else None
        return paired_text_vectors([getattr(s, "text", None) for s in blocks.samples], self.text_model,
                                   paired and paired.dim, cache=self.cache is not False)

    def prior_features(self, blocks: FeatureBlocks) -> dict[str, np.ndarray]:
        """The fitted prior's reading of ``blocks``'s images (kept in ``blocks``)."""
        return self.fusion_.prior_features(self.prior_, blocks)

    def prior_log_proba(self, blocks: FeatureBlocks) -> np.ndarray:
        """The language prior's zero-shot log-probabilities for ``blocks`` (``fusion='prior'``)."""
        return self.fusion_.prior_logits(self, blocks)

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
        self.classes_, y_idx = self.task_.encode(labels)
        fusion = self.fusion_
        M = self.fuse(blocks)
        view_M = [self.fuse(blocks.views[v]) for v in sorted(blocks.views)]
        head = fusion.fit(self, blocks, M, view_M, y_idx, self.unfitted_head())
        self.n_features_in_ = M.shape[1]
        from .precision import resolve

        self.state_ = FittedState(self.classes_, head, int(M.shape[1]),
                                  {e: int(v.shape[1]) for e, v in blocks.embeddings.items()},
                                  self.concept_bank().dim if fusion.text else None, blocks.probs_encoder, fusion,
                                  resolve(self.encoder_names, self.precision))
        return self

    def _fit_array(self, X, y):
        from sklearn.utils.validation import validate_data

        fusion = self.fusion_
        if fusion.needs_images:
            raise ValueError(f"fusion {fusion.name!r} needs images or FeatureBlocks, not a precomputed matrix "
                             "(a matrix is taken as fused image features: use fusion='image')")
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None "
                             "(a precomputed feature matrix carries no labels)")
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        self.classes_, y_idx = self.task_.encode(y)
        self.fit_failures_ = []
        head = fusion.fit(self, None, np.asarray(X, np.float64), [], y_idx, self.unfitted_head())
        self.state_ = FittedState(self.classes_, head, int(X.shape[1]), fusion=fusion)
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
        return z[:, 1] - z[:, 0] if z.shape[1] == 2 else z

    def predict_proba(self, X) -> np.ndarray:
        """(n_inputs, n_classes) probabilities, columns in ``classes_`` order; the row of an
        image that could not be read is NaN (see :meth:`featurize` for the reasons)."""
        F = self.featurize(X)
        return F.scatter(self.proba_featurized(F))

    def predict(self, X) -> np.ndarray:
        """Class per input; ``None`` for an image that could not be read."""
        return self.task_.decide(self.predict_proba(X), self.classes_)

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
            raise ValueError(f"head {self.head_name!r} is not linear: linear_head() needs 'logistic' or 'svm'")
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
            "fusion": self.fusion_name,
            "blocks": self.fusion_.layout(s.feature_dims, s.text_dim, s.paired and s.paired.dim) if s.feature_dims
            else [{"name": "precomputed", "start": 0, "stop": s.n_features}],
            "text_weight": float(self.fusion_.text_weight),
            "head": self.head_name,
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
        :class:`~.persistence.ModelFolderError` naming the folder and the problem. An ensemble's
        folder (``fit --search``) loads as an :class:`~.ensemble.Ensemble`."""
        from .ensemble import Ensemble, is_ensemble_folder

        if is_ensemble_folder(folder):
            return Ensemble.load(folder, member_class=cls)
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
