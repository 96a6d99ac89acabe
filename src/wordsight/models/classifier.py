"""``wordsight.Classifier``: images (or precomputed features) in, a fitted scikit-learn estimator out.

image -> encoder embedding(s) -> fusion (image / text / concat / prior) -> head -> classes.
Features come from the shared content-addressed cache, so fitting several heads or fusion modes on
the same images embeds them once.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from .augment import Augment
from .fusion import FUSIONS, FeatureBlocks, block_layout, fuse
from .heads import HEADS, LinearHead, log_softmax, make_head, softmax
from .prior import (MIN_GAIN, PRIOR_VIEWS, LanguagePrior, choose_view, choose_weight, leave_one_shot_out_folds, mix,
                    prior_temperature)


@dataclass
class Featurized:
    """Fused features of the images that could be read (``matrix[i]`` is ``samples[i]``)."""

    matrix: np.ndarray
    samples: list
    failures: list = field(default_factory=list)
    blocks: FeatureBlocks | None = None
    prior_logits: np.ndarray | None = None
    n_inputs: int = 0
    rows: np.ndarray | None = None  # position of each kept sample among the inputs


def _is_array(X) -> bool:
    """A feature matrix (ndarray, sparse, nested lists of numbers), as opposed to images."""
    import scipy.sparse as sp

    if isinstance(X, np.ndarray) or sp.issparse(X):
        return True
    if isinstance(X, (list, tuple)) and X:
        first = X[0]
        return isinstance(first, (list, tuple, np.ndarray, int, float, np.number)) and not isinstance(first, str)
    return hasattr(X, "__array__") and not isinstance(X, (str, os.PathLike))


class Classifier(ClassifierMixin, BaseEstimator):
    """Image classifier over pretrained encoders, with optional text fusion and a language prior.

    Parameters
    ----------
    encoders : str or tuple of str
        Image encoder names; several are concatenated (model fusion).
    fusion : {"image", "text", "concat", "prior"}
        What the head sees (image embeddings, the ConSE semantic vector, both), or image
        embeddings plus the zero-shot text classifier as a prior mixed into the head's logits.
    head : {"logistic", "svm", "mlp", "knn", "random_forest"}
    text_model : str
        Text encoder of the language layer (semantic vectors, zero-shot prior).
    text_weight : float
        Scale of the text block in ``concat`` fusion.
    C : float, sequence of float or None
        Inverse penalty of the logistic/SVM head; ``None`` chooses it by cross-validation over a
        log grid (1e-4 .. 1e2), a sequence is the grid.
    class_weight : None, "balanced" or dict
    head_params : dict or None
        Extra head options: ``hidden`` (mlp), ``k`` (knn), ``n_estimators``/``max_depth`` (forest).
    prior_weight : "auto" or float
        Weight of the zero-shot log-probabilities; "auto" chooses it on the training images only.
    class_descriptions : dict or None
        Class name -> description text(s) for the zero-shot prior (default: the language layer's).
    zero_shot_method : str
        The zero-shot classifier's method ("names", "templates", "descriptions", ...); "auto" is
        "descriptions" when ``class_descriptions`` are given, else "names" (no LLM is run).
    prior_view : {"auto", "plain", "light-background", "invert"}
        The image view the zero-shot prior reads; "auto" is "light-background" when most training
        images show a light object on a dark background (Fashion-MNIST, scans), else "plain".
    augment : int
        Augmented views per training image (embedded once, cached).
    augment_params : dict or None
        :class:`Augment` fields (scale, ratio, flip, brightness, contrast, saturation, rotation, seed).
    tta : int
        Test-time augmentation: average predictions over the image and this many views.
    small_input : "auto", int or None
        Input size for tiny images (e.g. 28-px Fashion-MNIST) on CNNs, passed to feature
        extraction ("auto": the extractor's measured choice, None: the model's full input size).
    cache : None, False, path or FeatureCache
        Feature cache (None: the default on-disk cache; False: none).
    batch_size : int or None
        Images per model call (None: measured once per machine, see ``features.engines.tuning``).
    random_state : int
    """

    def __init__(self, encoders=("efficientnet-lite0",), fusion="image", head="logistic",
                 text_model="minilm", text_weight=1.0, C=None, class_weight=None, head_params=None,
                 prior_weight="auto", class_descriptions=None, zero_shot_method="auto", prior_view="auto",
                 augment=0, augment_params=None, tta=0, small_input="auto", cache=None, batch_size=None,
                 random_state=0, quiet=True):
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

    # ------------------------------------------------------------------ configuration helpers
    @property
    def class_names(self) -> list[str]:
        """``classes_`` as a plain list of str (JSON-friendly)."""
        return [str(_py(c)) for c in self.classes_]

    @property
    def encoder_names(self) -> list[str]:
        return [self.encoders] if isinstance(self.encoders, str) else list(self.encoders)

    def _check_params(self):
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, not {self.fusion!r}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, not {self.head!r}")
        if not self.encoder_names:
            raise ValueError("encoders must name at least one image encoder")
        if self.prior_view not in PRIOR_VIEWS:
            raise ValueError(f"prior_view must be one of {', '.join(PRIOR_VIEWS)}, not {self.prior_view!r}")
        if self.prior_weight != "auto" and not (isinstance(self.prior_weight, (int, float)) and self.prior_weight >= 0):
            raise ValueError(f"prior_weight must be 'auto' or a number >= 0, not {self.prior_weight!r}")
        for name in ("augment", "tta"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"{name} must be an integer >= 0, not {v!r}")

    def _augment(self) -> Augment:
        return Augment.from_dict(self.augment_params)

    def _head_params(self) -> dict:
        p = {"C": self.C, "class_weight": self.class_weight, "random_state": self.random_state}
        p.update(self.head_params or {})
        return p

    # ------------------------------------------------------------------ features
    def extract(self, X, views: int = 0) -> FeatureBlocks:
        """Per-encoder embeddings and ImageNet probabilities of ``X`` (not fused), with
        ``views`` augmented views of each image. Reusable across fusion modes and heads."""
        from ..features import FeatureSet, extract_features
        from ..io.sources import open_source

        if isinstance(X, FeatureBlocks):
            if views and len(X.views) < views:
                raise ValueError(f"{views} augmented views needed but the features hold {len(X.views)}")
            return X
        if isinstance(X, FeatureSet):
            if views:
                raise ValueError("augmented views need images, not a FeatureSet")
            names = self.encoder_names
            if len(names) != 1 or (X.model and X.model != names[0]):
                raise ValueError(f"a FeatureSet of {X.model!r} cannot feed encoders {names}")
            return FeatureBlocks(list(X.samples), {names[0]: X.embeddings}, X.probabilities,
                                 names[0] if X.probabilities is not None else None, list(X.failures))
        source = open_source(X)
        aug = self._augment()

        def run(view_index: int) -> FeatureBlocks:
            view = aug.view(view_index) if view_index else None
            key = aug.view_key(view_index) if view_index else ""
            per, failures, probs, probs_enc = {}, [], None, None
            for enc in self.encoder_names:
                fs = extract_features(source, enc, cache=self.cache, batch_size=self.batch_size,
                                      view=view, view_key=key, quiet=self.quiet, small_input=self.small_input)
                per[enc] = fs
                failures += [f for f in fs.failures if f.path not in {g.path for g in failures}]
            keep = None
            for fs in per.values():  # keep the images every encoder could read
                paths = {s.path for s in fs.samples}
                keep = paths if keep is None else keep & paths
            first = per[self.encoder_names[0]]
            samples = [s for s in first.samples if s.path in keep]
            emb = {}
            for enc, fs in per.items():
                pos = {s.path: i for i, s in enumerate(fs.samples)}
                rows = [pos[s.path] for s in samples]
                emb[enc] = fs.embeddings[rows]
                if probs is None and fs.probabilities is not None:
                    probs, probs_enc = fs.probabilities[rows], enc
            return FeatureBlocks(samples, emb, probs, probs_enc, failures)

        blocks = run(0)
        for v in range(1, views + 1):
            vb = run(v)
            pos = {s.path: i for i, s in enumerate(vb.samples)}
            if not all(s.path in pos for s in blocks.samples):  # a view failed where the image did not
                missing = [s.path for s in blocks.samples if s.path not in pos]
                raise RuntimeError(f"augmented view {v} failed for {missing[:3]}")
            blocks.views[v] = vb.take([pos[s.path] for s in blocks.samples])
        return blocks

    def semantic_vectors(self, blocks: FeatureBlocks) -> np.ndarray | None:
        """The ConSE semantic vectors of ``blocks`` (None without ImageNet probabilities)."""
        if blocks.probs is None:
            return None
        from ..language import semantic_vectors

        return semantic_vectors(blocks.probs, bank=self.concept_bank())

    def concept_bank(self):
        """The concept bank (ImageNet concepts embedded by ``text_model``) behind the words."""
        from ..language.concepts import default_bank

        return default_bank(self.text_model)

    def _fuse(self, blocks: FeatureBlocks) -> tuple[np.ndarray, np.ndarray | None]:
        need_text = self.fusion in ("text", "concat")
        semantic = self.semantic_vectors(blocks) if need_text else None
        if need_text and semantic is None:
            raise ValueError(f"fusion {self.fusion!r} needs ImageNet probabilities: one of the encoders "
                             f"{self.encoder_names} must have an ImageNet head")
        return fuse(blocks, self.encoder_names, self.fusion, semantic, self.text_weight), semantic

    # ------------------------------------------------------------------ the language prior
    def prior_features(self, blocks: FeatureBlocks) -> tuple[np.ndarray, np.ndarray]:
        """ImageNet probabilities and embeddings of ``blocks``'s images as the language prior
        reads them (its view, full input size), extracted once per FeatureBlocks (cached)."""
        key = (self.probs_encoder_, self.prior_view_)
        if key not in blocks.prior_features:
            blocks.prior_features[key] = self._extract_prior_features(blocks.samples)
        return blocks.prior_features[key]

    def _extract_prior_features(self, samples) -> tuple[np.ndarray, np.ndarray]:
        from ..features import extract_features
        from ..io.sources import Source
        from ..language.views import get_view

        if any(getattr(s, "path", None) is None for s in samples):
            raise ValueError("the language prior reads the images, and these features carry none: pass "
                             "images, or FeatureBlocks extracted from images")
        encoder = self.probs_encoder_
        view, key = get_view(self.prior_view_)
        fs = extract_features(Source(list(samples), []), encoder, cache=self.cache, batch_size=self.batch_size,
                              view=view, view_key=key, quiet=self.quiet, small_input=None)
        pos = {s.path: i for i, s in enumerate(fs.samples)}
        missing = [s.path for s in samples if s.path not in pos]
        if missing:
            raise RuntimeError(f"the prior's view of {len(missing)} image(s) failed: {missing[:3]}")
        rows = [pos[s.path] for s in samples]
        return fs.probabilities[rows], fs.embeddings[rows]

    def prior_log_proba(self, blocks: FeatureBlocks) -> np.ndarray:
        """The language prior's zero-shot log-probabilities for ``blocks`` (``fusion='prior'``)."""
        return self.prior_.log_proba(*self.prior_features(blocks))

    def _resolve_prior_view(self, samples) -> str:
        if self.prior_view != "auto":
            return self.prior_view
        from ..features.engines.batch import read_bytes
        from ..io.images import ImageError, decode_image

        images = []
        for s in [samples[i] for i in np.linspace(0, len(samples) - 1, min(32, len(samples))).astype(int)]:
            data, err = read_bytes(s)
            try:
                images.append(decode_image(data)) if data else None
            except ImageError:
                pass
        return choose_view(images)

    def featurize(self, X) -> Featurized:
        """Fused feature matrix of ``X``, the samples kept (row order) and the failures."""
        if _is_array(X):
            from sklearn.utils.validation import validate_data

            M = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
            return Featurized(np.asarray(M, np.float32), [None] * len(M), [], None, None, len(M), np.arange(len(M)))
        from ..io.sources import open_source

        src = X if isinstance(X, FeatureBlocks) else (None if _is_feature_set(X) else open_source(X))
        blocks = self.extract(src if src is not None else X)
        M = self._fuse(blocks)[0]
        if M.shape[1] != self.n_features_in_:
            raise ValueError(f"fused features have {M.shape[1]} columns; this model was fitted on {self.n_features_in_}")
        prior = self.prior_log_proba(blocks) if self.fusion == "prior" else None
        if src is not None and not isinstance(src, FeatureBlocks):
            pos = {s.path: i for i, s in enumerate(src.samples)}
            rows, n = np.array([pos[s.path] for s in blocks.samples], np.int64), len(src.samples)
        else:
            rows, n = np.arange(len(blocks)), len(blocks)
        return Featurized(M, blocks.samples, blocks.failures, blocks, prior, n, rows)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Fit on images (folder, manifest, list of paths, Source, list of Sample), a FeatureSet,
        :class:`FeatureBlocks` or a precomputed feature matrix. ``y`` is optional when the images
        are labelled (class folders, a manifest's label column)."""
        self._check_params()
        if _is_array(X):
            return self._fit_array(X, y)
        src = X
        if y is not None and not isinstance(X, (FeatureBlocks,)) and not _is_feature_set(X):
            src = _relabel(X, y)
        blocks = self.extract(src, views=self.augment)
        labels = blocks.labels if not (y is not None and isinstance(X, FeatureBlocks)) else list(y)
        if not len(blocks):
            raise ValueError("no training image could be read: " + "; ".join(f"{p.path}: {p.reason}" for p in blocks.failures[:5]))
        if any(lab is None for lab in labels):
            n = sum(lab is None for lab in labels)
            raise ValueError(f"{n} training image(s) have no label: give y, class sub-folders or a manifest label column")
        self.fit_failures_ = list(blocks.failures)
        return self._fit_blocks(blocks, labels)

    def _fit_array(self, X, y):
        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import validate_data

        if self.fusion != "image":
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
        self.head_ = make_head(self.head, **self._head_params()).fit(np.asarray(X, np.float64), y_idx, len(classes))
        self._no_prior()
        self.feature_dims_ = {}
        self.probs_encoder_ = None
        return self

    def _fit_blocks(self, blocks: FeatureBlocks, labels):
        from sklearn.utils.multiclass import check_classification_targets

        y = np.asarray(labels, dtype=object)
        check_classification_targets(np.asarray([str(v) for v in labels]))
        classes = sorted(set(labels))
        self.classes_ = np.asarray(classes)
        index = {c: i for i, c in enumerate(classes)}
        y_idx = np.asarray([index[v] for v in y], np.int64)
        n_classes = len(classes)
        if n_classes < 2:
            raise ValueError(f"at least two classes are needed to fit, got {classes}")
        M, semantic = self._fuse(blocks)
        self.n_features_in_ = M.shape[1]
        self.feature_dims_ = {e: int(v.shape[1]) for e, v in blocks.embeddings.items()}
        self.text_dim_ = None if semantic is None else int(semantic.shape[1])
        self.probs_encoder_ = blocks.probs_encoder
        view_M = {v: self._fuse(b)[0] for v, b in blocks.views.items()}
        X_train = np.concatenate([M] + [view_M[v] for v in sorted(view_M)]).astype(np.float64)
        y_train = np.tile(y_idx, 1 + len(view_M))
        self.head_ = make_head(self.head, **self._head_params()).fit(X_train, y_train, n_classes)
        self._no_prior()
        if self.fusion == "prior":
            if self.probs_encoder_ is None:
                raise ValueError(f"fusion 'prior' needs ImageNet probabilities: one of the encoders "
                                 f"{self.encoder_names} must have an ImageNet head")
            self.prior_view_ = self._resolve_prior_view(blocks.samples)
            feats = self.prior_features(blocks)
            self.prior_ = LanguagePrior.fit(self.zero_shot_classifier(), self.probs_encoder_, self.prior_view_, *feats)
            self.zero_shot_ = self.prior_.conse
            prior = self.prior_.log_proba(*feats)
            self.prior_temperature_ = prior_temperature(prior, y_idx)
            if self.prior_weight == "auto":
                (self.prior_weight_, self.prior_head_temperature_,
                 self.prior_scores_) = self._choose_prior_weight(blocks, M, view_M, prior, y_idx, n_classes)
            else:
                self.prior_weight_ = float(self.prior_weight)
        return self

    def _no_prior(self):
        self.prior_weight_, self.prior_temperature_, self.prior_head_temperature_, self.prior_scores_ = 0.0, 1.0, 1.0, {}
        self.zero_shot_ = self.prior_ = self.prior_view_ = None

    def zero_shot_classifier(self):
        """The (unfitted) zero-shot classifier of this model's classes that the prior is made of."""
        from ..language import ZeroShotClassifier

        method = self.zero_shot_method
        if method == "auto":
            method = "descriptions" if self.class_descriptions else "names"
        return ZeroShotClassifier([str(c) for c in self.classes_], descriptions=self.class_descriptions,
                                  method=method, text_model=self.text_model)

    def _choose_prior_weight(self, blocks, M, view_M, prior, y_idx, n_classes):
        """Held-out head logits from the training images only (see :mod:`.prior`)."""
        folds = leave_one_shot_out_folds(y_idx, self.random_state)
        if folds:
            held_head = np.zeros((len(y_idx), n_classes))
            # the fitted head's penalty, not one chosen again per fold: the held-out logits must
            # be as sure of themselves as the head that the prior is mixed into (a small C makes
            # a timid head that a prior overrules, a large one a head it cannot move)
            params = dict(self._head_params(), C=self.head_.info.get("C", self.C))
            for tr, va in folds:
                Xtr = np.concatenate([M[tr]] + [view_M[v][tr] for v in sorted(view_M)]).astype(np.float64)
                ytr = np.tile(y_idx[tr], 1 + len(view_M))
                h = make_head(self.head, **params).fit(Xtr, ytr, n_classes)
                held_head[va] = h.logits(M[va].astype(np.float64))
            held_prior, held_y, how = prior, y_idx, f"leave-one-shot-out ({len(folds)} folds)"
            min_gain = MIN_GAIN
            head_t = prior_temperature(held_head, y_idx)
        else:
            vb = blocks.views
            if not vb:
                if not blocks.samples or blocks.samples[0] is None or not hasattr(blocks.samples[0], "path"):
                    return 0.0, 1.0, {"how": "no held-out data (one image per class, no images for views): image-only"}
                vb = self._extra_views(blocks, 2)
            # the prior never saw the training images, so its predictions on them stand for its
            # predictions on each view
            held_head = np.concatenate([self.head_.logits(self._fuse(b)[0].astype(np.float64)) for _, b in sorted(vb.items())])
            held_prior, held_y = np.tile(prior, (len(vb), 1)), np.tile(y_idx, len(vb))
            how = f"augmented views of the training images ({len(vb)} per image)"
            head_t, min_gain = 1.0, 0
        w, scores = choose_weight(head_t * held_head, held_prior, held_y, self.prior_temperature_, min_gain=min_gain)
        return w, head_t, {"how": how, "scores": scores}

    def _extra_views(self, blocks: FeatureBlocks, n: int) -> dict:
        from ..io.sources import Source

        src = Source([s for s in blocks.samples], [])
        return self.extract(src, views=n).views

    # ------------------------------------------------------------------ predict
    def _check_fitted(self):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "head_")

    def _logits_featurized(self, F: Featurized) -> np.ndarray:
        z = self.head_.logits(F.matrix.astype(np.float64))
        if self.fusion == "prior" and F.prior_logits is not None:
            z = mix(z, F.prior_logits, self.prior_weight_, self.prior_temperature_, self.prior_head_temperature_)
        return log_softmax(z)

    def _proba_featurized(self, F: Featurized) -> np.ndarray:
        P = softmax(self._logits_featurized(F))
        if self.tta and F.blocks is not None and F.samples and hasattr(F.samples[0], "path"):
            from ..io.sources import Source

            vb = self.extract(Source(list(F.samples), []), views=self.tta).views
            for v, b in sorted(vb.items()):  # the prior reads the image itself, not its views
                Fv = Featurized(self._fuse(b)[0], b.samples, [], b, F.prior_logits)
                P = P + softmax(self._logits_featurized(Fv))
            P = P / (1 + len(vb))
        return P

    def decision_function(self, X) -> np.ndarray:
        """Log-probabilities per class, (n, n_classes); with two classes the log-odds of the second
        class, (n,), as scikit-learn expects. Rows of failed images are NaN."""
        self._check_fitted()
        F = self.featurize(X)
        z = _scatter(self._logits_featurized(F), F, len(self.classes_))
        return z[:, 1] - z[:, 0] if z.shape[1] == 2 else z

    def predict_proba(self, X) -> np.ndarray:
        """(n_inputs, n_classes) probabilities, columns in ``classes_`` order; the row of an
        image that could not be read is NaN (see :meth:`featurize` for the reasons)."""
        self._check_fitted()
        F = self.featurize(X)
        return _scatter(self._proba_featurized(F), F, len(self.classes_))

    def predict(self, X) -> np.ndarray:
        """Class per input; ``None`` for an image that could not be read."""
        P = self.predict_proba(X)
        ok = ~np.isnan(P).any(1)
        out = np.empty(len(P), dtype=self.classes_.dtype if ok.all() else object)
        out[ok] = self.classes_[P[ok].argmax(1)]
        if not ok.all():
            out[~ok] = None
        return out

    def predict_records(self, X, top_k: int = 5, describe: bool = True) -> list[dict]:
        """One dict per input image: path, predicted class, top-k (class, probability), its
        description in words and, for a failure, the error instead."""
        self._check_fitted()
        F = self.featurize(X)
        P = self._proba_featurized(F)
        texts = self._describe_blocks(F.blocks) if describe and F.blocks is not None else [None] * len(P)
        out = []
        k = min(top_k, len(self.classes_))
        for s, p, text in zip(F.samples, P, texts):
            order = np.argsort(-p)[:k]
            out.append({"path": getattr(s, "path", None), "label": getattr(s, "label", None),
                        "predicted": _py(self.classes_[order[0]]),
                        "top_k": [(_py(self.classes_[j]), float(p[j])) for j in order],
                        "description": text, "error": None})
        for f in F.failures:
            out.append({"path": f.path, "label": None, "predicted": None, "top_k": [], "description": None,
                        "error": f.reason})
        return out

    def describe(self, X) -> list[str | None]:
        """Per-image descriptions in words (the ImageNet concepts each image resembles), one per
        input; ``None`` for an image that could not be read."""
        F = self.featurize(X) if hasattr(self, "head_") else None
        blocks = F.blocks if F is not None else self.extract(X)
        texts = self._describe_blocks(blocks)
        if F is None:
            return texts
        out = [None] * F.n_inputs
        for r, t in zip(F.rows, texts):
            out[r] = t
        return out

    def _describe_blocks(self, blocks: FeatureBlocks) -> list[str | None]:
        if blocks is None or blocks.probs is None:
            return [None] * (0 if blocks is None else len(blocks))
        from ..language import describe

        return describe(blocks.probs, bank=self.concept_bank())

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
        input size); ``load_model(encoder)(torch.from_numpy(x)[None])["embedding"]`` is then the
        embedding that :meth:`pipeline_spec`'s blocks start from."""
        from ..features.engines.batch import EmbedBatch

        fn = EmbedBatch(encoder or self.encoder_names[0], engine="torch", small_input=self.small_input)
        small = fn.small_config()
        x, err = fn.decode(data, small if small is not None and fn._is_tiny(data) else None)
        if x is None:
            raise ValueError(err)
        return x

    def pipeline_spec(self) -> dict:
        """How an image becomes logits, for reproducing the path in torch (explanations)."""
        self._check_fitted()
        return {
            "encoders": self.encoder_names,
            "fusion": self.fusion,
            "blocks": block_layout(self.encoder_names, self.feature_dims_, self.fusion, self.text_dim_)
            if self.feature_dims_ else [{"name": "precomputed", "start": 0, "stop": self.n_features_in_}],
            "text_weight": float(self.text_weight),
            "head": self.head,
            "head_logits": "fused @ W.T + b (linear_head())" if isinstance(self.head_, LinearHead) else "head_.logits(fused)",
            "prior": None if self.fusion != "prior" else {
                "formula": "log_softmax(head_temperature * head) + weight * log_softmax(temperature * prior_log_proba)",
                "prior_log_proba": "mean of the zero-shot log-probabilities of the ConSE vector and the linear "
                                   "text-space map, read from the prior's view at full input size",
                "weight": self.prior_weight_, "temperature": self.prior_temperature_,
                "head_temperature": self.prior_head_temperature_,
                "encoder": self.probs_encoder_, "view": self.prior_view_},
            "classes": [_py(c) for c in self.classes_],
        }

    # ------------------------------------------------------------------ persistence
    def save(self, folder) -> str:
        from .persistence import save_classifier

        return save_classifier(self, folder)

    @classmethod
    def load(cls, folder) -> "Classifier":
        from .persistence import load_classifier

        return load_classifier(folder)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = False
        return tags


def _py(v):
    return v.item() if isinstance(v, np.generic) else v


def _is_feature_set(X) -> bool:
    from ..features import FeatureSet

    return isinstance(X, FeatureSet)


def _relabel(X, y):
    """The source of ``X`` with labels from ``y`` (one per listed image, in order)."""
    from dataclasses import replace

    from ..io.sources import Source, open_source

    src = open_source(X)
    y = list(y)
    if len(y) != len(src.samples):
        raise ValueError(f"y has {len(y)} labels but {len(src.samples)} images were listed")
    return Source([replace(s, label=lab) for s, lab in zip(src.samples, y)], list(src.problems))


def _scatter(values: np.ndarray, F: Featurized, n_classes: int) -> np.ndarray:
    out = np.full((F.n_inputs, n_classes), np.nan)
    out[F.rows] = values
    return out
