"""The one-class estimator, scikit-learn style: ``fit`` on normal images (or feature rows) only;
``score_samples`` (higher = more normal, as scikit-learn's), ``decision_function`` (score minus the
threshold), ``predict`` (1 normal, -1 abnormal; NaN-free: an unreadable image is left out of
``featurize`` and gets NaN scores). The threshold is calibrated on held-out scores of the normal
images (leave-one-out for ``knn``) so that a fraction ``reject_rate`` of normal images is refused.
Features: each encoder's pooled embedding L2-normalised, concatenated, the row L2-normalised; for
``patchcore`` patch grids (:mod:`.patches`). With ``class_name`` the words' log-odds (:mod:`.words`)
are read beside them (``Featurized.prior_logits``): alone for method ``words``, else fused."""
from __future__ import annotations

import numpy as np

from ..._util.numerics import l2_normalize
from ..feature_blocks import FeatureBlocks, Featurized, extract_blocks, input_rows
from .scorers import SCORERS

METHODS = (*SCORERS, "words")
# The words' share of a fused score (image and words each standardised on the normal images):
# measured in benchmarks/words_fashion_mnist.py (docs/benchmarks.md, "Anomaly: words and PatchCore").
TEXT_WEIGHT = 0.1


class AnomalyDetector:
    """Normal or not, from normal images only; implements :class:`~wordsight.estimator.FittedModel`
    where it applies (``classes_``, ``featurize``, ``describe``, ``save``, ``load``)."""

    classes_ = np.array(["normal", "abnormal"])

    def __init__(self, encoders="efficientnet-lite0", method: str = "knn", k: int = 2, reject_rate: float = 0.05,
                 cache=None, batch_size=None, quiet: bool = True, small_input="auto", coreset: float = 0.1,
                 class_name: str | None = None, text_weight: float = TEXT_WEIGHT, precision: str = "auto"):
        self.encoders, self.method, self.k, self.reject_rate = encoders, method, k, reject_rate
        self.coreset, self.class_name, self.text_weight = coreset, class_name, text_weight
        self.cache, self.batch_size, self.quiet, self.small_input = cache, batch_size, quiet, small_input
        # the pooled features' precision, as a classifier's (estimator.precision): recorded at fit in
        # ``precisions_`` and used again at scoring, so that normal bank and new images agree
        self.precision = precision

    @property
    def encoder_names(self) -> list[str]:
        """The image encoders' names as a list (``encoders`` may be one string)."""
        return [self.encoders] if isinstance(self.encoders, str) else list(self.encoders)

    def set_params(self, **params) -> "AnomalyDetector":
        """Set parameters by name (e.g. ``cache``, ``batch_size`` of a loaded detector); returns self."""
        for k, v in params.items():
            if not hasattr(self, k):
                raise ValueError(f"AnomalyDetector has no parameter {k!r}")
            setattr(self, k, v)
        return self

    # ------------------------------------------------------------------ features
    def extract(self, X) -> FeatureBlocks:
        """Every encoder's pooled features of ``X`` (images, a folder, a manifest, or FeatureBlocks)."""
        from ...io.sources import open_source
        from ..precision import for_features

        if isinstance(X, FeatureBlocks):
            return X
        precision = for_features(self.encoder_names, self.precision, getattr(self, "precisions_", None))
        return extract_blocks(open_source(X), self.encoder_names, cache=self.cache, batch_size=self.batch_size,
                              quiet=self.quiet, small_input=self.small_input, precision=precision)

    @property
    def localises(self) -> bool:
        """Whether the scorer scores patches, so that it can say where an image is abnormal."""
        return self.method in SCORERS and SCORERS[self.method].reads == "patches"

    def featurize(self, X) -> Featurized:
        """The rows the image scorer reads (:meth:`image_rows`) and, with a ``class_name``, each
        image's words log-odds in ``prior_logits`` (:mod:`.words`); images both read."""
        from .words import with_words

        return with_words(self, X, None if self.method == "words" else self.image_rows(X))

    def image_rows(self, X) -> Featurized:
        """The normalised rows of the images that could be read (a 2-D array: rows used as given,
        normalised); for ``patchcore`` the images' patch grids (:mod:`.patches`)."""
        if self.localises:
            return self._patch_rows(X)[0]
        if isinstance(X, np.ndarray):
            Z = l2_normalize(np.atleast_2d(X))
            return Featurized(Z, [None] * len(Z), [], None, None, len(Z), np.arange(len(Z)))
        from ...io.sources import open_source

        src = None if isinstance(X, FeatureBlocks) else open_source(X)
        blocks = self.extract(X if src is None else src)
        rows, n = input_rows(src, blocks)
        parts = [l2_normalize(blocks.embeddings[e]) for e in self.encoder_names]
        Z = l2_normalize(np.concatenate(parts, 1)) if len(blocks) else np.zeros((0, 0), np.float32)
        return Featurized(Z, blocks.samples, blocks.failures, blocks, None, n, rows)

    def featurize_patches(self, X, views: bool = False):
        """(Featurized patch grids (with the words, as :meth:`featurize`), the uint8 pictures the
        encoder saw when ``views``, else None)."""
        from .words import with_words

        F, pictures = self._patch_rows(X, views)
        W = with_words(self, X, F)
        if W is not F and pictures is not None:  # an image the words could not read: its picture goes too
            keep = set(W.rows.tolist())
            pictures = [p for r, p in zip(F.rows, pictures) if r in keep]
        return W, pictures

    def _patch_rows(self, X, views: bool = False):
        from ...io.sources import open_source
        from .patches import read_patches

        if isinstance(X, np.ndarray):
            Z = np.atleast_2d(np.asarray(X, np.float32))
            return Featurized(Z, [None] * len(Z), [], None, None, len(Z), np.arange(len(Z))), None
        src = open_source(X)
        Z, kept, failures, pictures = read_patches(src.samples, self.encoder_names, self.small_input,
                                                   self.batch_size, views=views)
        pos = {s.path: i for i, s in enumerate(src.samples)}
        rows = np.array([pos[s.path] for s in kept], np.int64)
        return Featurized(Z, kept, list(src.problems) + failures, None, None, len(src.samples), rows), pictures

    def heatmaps_featurized(self, F: Featurized) -> np.ndarray:
        """(n, GRID, GRID) patch distances of the read rows of ``F`` over ``-threshold_`` (the most
        abnormal patch distance at the decision): 1 marks a patch as abnormal as the threshold."""
        if not self.localises:
            raise ValueError(f"the {self.method} method scores whole images: heatmaps need method='patchcore'")
        return self.scorer_.patch_distances(F.matrix) / max(-self.threshold_, 1e-12)

    # ------------------------------------------------------------------ fit and scores
    def fit(self, X, y=None) -> "AnomalyDetector":
        """Fit on normal images (``y`` ignored: every image is normal); unreadable ones are skipped
        and listed in ``fit_failures_``."""
        from .words import fit_words

        if self.method not in METHODS:
            raise ValueError(f"unknown anomaly method {self.method!r}: choose one of {', '.join(METHODS)}")
        if not 0.0 <= self.reject_rate < 1.0:
            raise ValueError(f"reject_rate must be in [0, 1), got {self.reject_rate}")
        from ..precision import resolve

        self.precisions_ = None  # a refit resolves the parameter again
        if fit_words(self, X):  # the words alone (no image scorer)
            return self
        # patch grids are read by the torch engine at fp32 (.patches); pooled features as resolved here
        self.precisions_ = ({e: "fp32" for e in self.encoder_names} if self.localises
                            else resolve(self.encoder_names, self.precision))
        F = self.image_rows(X)
        if len(F.matrix) < self.k + 1:
            where = f" in {X}" if isinstance(X, (str, bytes)) or hasattr(X, "__fspath__") else ""
            raise ValueError(f"at least k+1 = {self.k + 1} readable normal images are needed{where}, "
                             f"got {len(F.matrix)}")
        self.scorer_ = SCORERS[self.method](self.k, coreset=self.coreset).fit(F.matrix)
        held_out = -self.scorer_.held_out_distance()
        if self.class_name is not None:  # fused with the words: standardised on the normal images
            from .words import fuse_held_out

            held_out = fuse_held_out(self, X, F, held_out)
        self.threshold_ = float(np.quantile(held_out, self.reject_rate))
        self.n_train_, self.n_features_in_ = len(F.matrix), F.matrix.shape[1]
        self.fit_failures_ = list(F.failures)
        return self

    def score_featurized(self, F: Featurized) -> np.ndarray:
        """``score_samples`` of the read rows of ``F``: minus the distance to the normal images, the
        words' log-odds (method ``words``), or their standardised mix (:func:`.words.fused`)."""
        from .words import fused

        if not len(F.samples):
            return np.zeros(0)
        if self.method == "words":
            return np.asarray(F.prior_logits, np.float64)
        image = -self.scorer_.distance(F.matrix)
        return image if getattr(self, "words_", None) is None else fused(self, image, F.prior_logits)

    def score_samples(self, X) -> np.ndarray:
        """Per input: higher = more normal; NaN for an image that could not be read."""
        F = self.featurize(X)
        return F.scatter(self.score_featurized(F)[:, None])[:, 0]

    def decision_function(self, X) -> np.ndarray:
        """``score_samples - threshold_``: negative = abnormal."""
        return self.score_samples(X) - self.threshold_

    def predict(self, X) -> np.ndarray:
        """1 normal, -1 abnormal (0 for an unreadable image)."""
        d = self.decision_function(X)
        return np.where(np.isnan(d), 0, np.where(d >= 0, 1, -1)).astype(np.int64)

    def describe(self, X) -> list:
        """Per input, ``normal``/``abnormal`` with its score and the threshold (None if unreadable)."""
        return [None if np.isnan(s) else f"{'normal' if s >= self.threshold_ else 'abnormal'} "
                f"(score {s:.4f}, threshold {self.threshold_:.4f})" for s in self.score_samples(X)]

    # ------------------------------------------------------------------ persistence
    def save(self, folder) -> str:
        """Write the detector as a :mod:`wordsight.storage` folder (atomically); returns the folder."""
        from .saved import save_detector

        return save_detector(self, folder)

    @classmethod
    def load(cls, folder) -> "AnomalyDetector":
        """The detector saved in ``folder``, every file and field verified (:mod:`.saved`)."""
        from .saved import load_detector

        return load_detector(cls, folder)
