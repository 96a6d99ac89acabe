"""The one zero-shot path: images -> their view at full input size -> the text space -> class scores.

:class:`ZeroShotPipeline` is what ``wordsight zeroshot``, ``POST /v1/zeroshot``, the Classifier's
language prior and the report's zero-shot row all run. Its defaults are the best measured ones
(docs/benchmarks.md, "Zero-shot on Fashion-MNIST"):

- **view** ``auto``: light-on-dark images (Fashion-MNIST, scans) are inverted so that the ImageNet
  head reads them like its photos (+6 points on Fashion-MNIST training images), chosen from the
  images' borders (:func:`~wordsight.features.views.choose_view`);
- always the encoder's **full input size** (its ImageNet head was trained at it);
- **ways** ``auto``: for an ImageNet CNN both ways into the text space, ConSE and the DeViSE-style
  linear map, their log-probabilities averaged (joint and caption models have one way);
- **center** ``auto``: the images' own mean is subtracted in the text space (+2-5 points) when
  there are at least :data:`MIN_CENTER_IMAGES` of them (a few images give a noisy mean: two
  images of one class would be pushed apart). The Classifier's prior centres on its labelled
  training images, which cover every class, with ``others``: the mean times ``(C - 1) / C``
  (below).
- **center** ``others`` (the few-shot prior's): of the mean of a class-balanced set of ``C``
  classes, a share ``1 / C`` is made of an image's own class, and subtracting it pulls every image
  away from its own class; with a few labelled images that share is a few single images, and the
  prior's decisions become "which of the labelled images is this one like" (Fashion-MNIST Ankle
  boot vs Bag: 94.0% uncentred and 95.0% centred on the 200 test images, 85.6% centred on the two
  labelled images of a one-image-per-class draw, mean of 5 draws; docs/benchmarks.md, issue 26).
  ``others`` keeps the other classes' share, ``(C - 1) / C`` of the mean: half with two classes,
  0.9 with ten. It has no constant of its own.

``fit(images)`` chooses the view, reads the images and fits one
:class:`~wordsight.zeroshot.text_classifier.ZeroShotClassifier` per way; ``predict_log_proba(images)``
reads new images the same way. The ``*_reading`` methods take the arrays a reading holds
(``probs``, ``embedding``), for callers that extracted them already.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .._util.numerics import log_softmax

MIN_CENTER_IMAGES = 50
WAY_CHOICES = ("auto", "conse", "linear", "both")
CENTER_CHOICES = ("auto", "yes", "no", "others")
FORMAT, FORMAT_VERSION = "wordsight-zero-shot-pipeline", 1
CONFIG, OLD_CONFIG = "pipeline.json", "prior.json"  # OLD_CONFIG: a language prior saved by wordsight 0.x


def read_images(X, encoder: str, view: str, cache=None, batch_size=None, quiet: bool = True, tile=None):
    """Features of images ``X`` as zero-shot reads them: ``view`` at the encoder's full input size
    (``tile``: a ``(function, key)`` view in its place, e.g. :func:`~..features.views.tile_view`)."""
    from ..features import extract_features
    from ..features.views import get_view

    fn, key = get_view(view) if tile is None else tile
    return extract_features(X, encoder, cache=cache, batch_size=batch_size, view=fn, view_key=key, quiet=quiet,
                            small_input=None)


def read_views(X, encoder: str, views: list, cache=None, batch_size=None, quiet: bool = True):
    """Features of images ``X`` through each of ``views`` (``(function, key)`` pairs, e.g. the
    pipeline's view and its tiles) as zero-shot reads them, each image read and decoded once: a
    :class:`~..features.multi_view.ViewSets` (``[v]`` what :func:`read_images` gives with ``tile=views[v]``)."""
    from ..features.multi_view import extract_views

    return extract_views(X, encoder, views, cache=cache, batch_size=batch_size, quiet=quiet, small_input=None)


# config flag -> the subclass that loads such a folder; registered by the subclass's module
# (zeroshot.tags: "tags" -> TagPrior), which loads it through ``tags.load_prior``
SAVED_KINDS: dict[str, type] = {}


class ZeroShotPipeline:
    """Zero-shot classification of images from class names (and descriptions); see the module doc.

    Parameters
    ----------
    classes : list of str
    encoder : str
        Image encoder: an ImageNet CNN (``efficientnet-lite0``), ``clip:...`` or ``caption:...``.
    text_model : str
        Text encoder for CNN and caption features (a joint model uses its own text tower).
    method : str
        ``auto`` (``descriptions`` when ``descriptions`` are given, else ``names``; no LLM is run),
        or one of :data:`~wordsight.zeroshot.text_classifier.METHODS`.
    descriptions : dict, path or None
        Class name -> description texts.
    view : ``auto``, ``plain``, ``light-background`` or ``invert``.
    ways : ``auto`` (both for ImageNet CNNs), ``conse``, ``linear`` or ``both``.
    center : ``auto``, ``yes``, ``no`` or ``others`` (see the module doc).
    zero_shot_options : dict
        Passed to each :class:`ZeroShotClassifier` (``templates``, ``llm``, ``llm_options``, ``k``,
        ``seed``, ``scale``, ``include_name``).
    cache, batch_size, quiet : feature extraction options.
    """

    def __init__(self, classes, *, encoder: str = "efficientnet-lite0", text_model: str = "minilm",
                 method: str = "auto", descriptions=None, view: str = "auto", ways: str = "auto",
                 center: str = "auto", zero_shot_options: dict | None = None, cache=None,
                 batch_size: int | None = None, quiet: bool = True):
        from ..features.views import VIEW_CHOICES

        if view not in VIEW_CHOICES:
            raise ValueError(f"view must be one of {', '.join(VIEW_CHOICES)}, not {view!r}")
        if ways not in WAY_CHOICES:
            raise ValueError(f"ways must be one of {', '.join(WAY_CHOICES)}, not {ways!r}")
        if center not in CENTER_CHOICES and not isinstance(center, bool):
            raise ValueError(f"center must be one of {', '.join(CENTER_CHOICES)}, not {center!r}")
        self.classes = [str(c) for c in classes]
        self.encoder, self.text_model = encoder, text_model
        self.method, self.descriptions = method, descriptions
        self.view, self.ways, self.center = view, ways, center
        self.zero_shot_options = dict(zero_shot_options or {})
        self.cache, self.batch_size, self.quiet = cache, batch_size, quiet

    # ------------------------------------------------------------------ configuration
    @property
    def kind(self) -> str:
        """What the encoder gives the language layer: ImageNet probabilities or a joint image-text space."""
        from .image_text import encoder_kind

        return encoder_kind(self.encoder)

    def _ways(self) -> list[str]:
        if self.kind != "imagenet":
            return ["direct"]
        return ["conse", "linear"] if self.ways in ("auto", "both") else [self.ways]

    def _method(self) -> str:
        if self.method == "auto":
            return "descriptions" if self.descriptions else "names"
        return self.method

    def zero_shot_classifier(self, way: str):
        """The unfitted :class:`ZeroShotClassifier` of one way."""
        from .image_text import text_side
        from .text_classifier import ZeroShotClassifier

        return ZeroShotClassifier(self.classes, descriptions=self.descriptions, method=self._method(),
                                  text_model=text_side(self.encoder, self.text_model),
                                  **{"llm": "none", **self.zero_shot_options})

    # ------------------------------------------------------------------ reading images
    def read(self, X, view: str | None = None):
        """Features of images ``X`` on the pipeline's view at full input size: a FeatureSet."""
        return read_images(X, self.encoder, view or self.view_, cache=self.cache, batch_size=self.batch_size,
                           quiet=self.quiet)

    @staticmethod
    def reading(features) -> dict[str, np.ndarray]:
        """The arrays the pipeline reads (``probs``, ``embedding``) from a FeatureSet."""
        out = {"embedding": features.embeddings}
        if features.probabilities is not None:
            out["probs"] = features.probabilities
        return out

    def vectors(self, reading: dict, way: str) -> np.ndarray:
        """(N, D) vectors of a reading in the text space, one way."""
        from ..text.semantic import semantic_vectors
        from .image_text import text_side, text_space_map

        if way == "direct":
            from .._util.numerics import l2_normalize

            return l2_normalize(reading["embedding"])
        if way == "conse":
            from ..text.concepts import default_bank

            return semantic_vectors(reading["probs"], default_bank(text_side(self.encoder, self.text_model)))
        return text_space_map(self.encoder, text_side(self.encoder, self.text_model)).transform(reading["embedding"])

    # ------------------------------------------------------------------ fitting
    def choose_view(self, X=None) -> str:
        """The view :meth:`fit` reads images with: ``view`` unless it is ``auto``, else the one chosen
        from images ``X`` (:func:`~..features.views.choose_view_of_samples`; ``plain`` without images)."""
        if self.view != "auto":
            return self.view
        if X is None:
            return "plain"
        from ..features.views import choose_view_of_samples
        from ..io.sources import open_source

        return choose_view_of_samples(open_source(X).samples)

    def fit(self, X=None, *, reading: dict | None = None, view: str | None = None) -> "ZeroShotPipeline":
        """Choose the view from images ``X`` (or take ``view``), read them and fit each way,
        centred on them when ``center`` says so. With neither ``X`` nor ``reading`` nothing is
        centred and the view ``auto`` falls back to ``plain``."""
        if X is not None and view is None and self.view == "auto":
            from ..io.sources import open_source

            X = open_source(X)  # listed once: for the view and for the reading
        self.view_ = view if view is not None else self.choose_view(X)
        if reading is None and X is not None:
            reading = self.reading(self.read(X))
        n = 0 if reading is None else len(reading["embedding"])
        center = self.center is True or self.center in ("yes", "others") or (
            self.center == "auto" and n >= MIN_CENTER_IMAGES)
        center = center and n >= 2
        self.centered_ = bool(center)
        share = (len(self.classes) - 1) / len(self.classes) if self.center == "others" else 1.0
        self.ways_ = {}
        for way in self._ways():
            zs = self.zero_shot_classifier(way).set_params(center=share if self.centered_ else False)
            self.ways_[way] = zs.fit(self.vectors(reading, way) if self.centered_ else None)
        self.classes_ = np.asarray(self.classes, dtype=object)
        return self

    # ------------------------------------------------------------------ prediction
    def ways_log_proba(self, reading: dict) -> dict[str, np.ndarray]:
        """Log-probabilities per way of a reading."""
        return {w: zs.predict_log_proba(self.vectors(reading, w)) for w, zs in self.ways_.items()}

    def log_proba_reading(self, reading: dict) -> np.ndarray:
        """(N, n_classes) log-probabilities: the mean over the ways, renormalised."""
        ways = self.ways_log_proba(reading)
        return log_softmax(sum(ways.values()) / len(ways))

    def predict_log_proba(self, X) -> tuple[np.ndarray, object]:
        """Log-probabilities of images ``X`` and their FeatureSet (samples kept, failures)."""
        fs = self.read(X)
        if not fs.samples:
            return np.zeros((0, len(self.classes))), fs
        return self.log_proba_reading(self.reading(fs)), fs

    def explain(self, reading: dict, top: int = 3, classes=None) -> list[dict]:
        """Per image, the class texts that matched best (the first way's evidence)."""
        way, zs = next(iter(self.ways_.items()))
        return zs.explain(self.vectors(reading, way), top=top, classes=classes)

    @property
    def class_texts_(self) -> dict:
        """The texts each class is scored with (names, templates or descriptions), after fit."""
        return next(iter(self.ways_.values())).class_texts_

    # ------------------------------------------------------------------ persistence
    def save(self, folder) -> Path:
        """``pipeline.json`` plus one ZeroShotClassifier folder per way: a :mod:`wordsight.storage`
        folder, written atomically, every file's checksum in ``pipeline.json``."""
        from ..storage import write_folder

        write_folder(folder, self._write, config_name=CONFIG)
        return Path(folder)

    def _write(self, folder: Path) -> dict:
        from .._version import __version__

        for way, zs in self.ways_.items():
            zs.save(folder / way)
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "library_version": __version__,
                "classes": self.classes, "encoder": self.encoder, "text_model": self.text_model,
                "method": self._method(), "view": self.view_, "ways": list(self.ways_), "centered": self.centered_}

    @classmethod
    def load(cls, folder) -> "ZeroShotPipeline":
        """A saved pipeline, every file verified; also reads one saved before checksums, and a
        language prior saved by wordsight 0.x (``prior.json``, whose linear way kept its own
        ``text_map/``: that map is recomputed, identically, from the encoder's ImageNet head)."""
        from ..io.safe_files import UnsafeFileError, confined
        from ..storage import ModelFolderError, read_folder
        from .text_classifier import ZeroShotClassifier

        folder = Path(folder)
        path = folder / (OLD_CONFIG if not (folder / CONFIG).exists() and (folder / OLD_CONFIG).is_file() else CONFIG)
        meta = read_folder(folder, (FORMAT,), version=FORMAT_VERSION, what="zero-shot pipeline",
                           config_name=path.name, legacy=True).config
        names = meta.get("ways")
        if not (isinstance(names, list) and names and set(names) <= {"conse", "linear"}):
            raise ModelFolderError(f"{path}: field 'ways' must be a non-empty list of conse, linear, not {names!r}")
        try:
            ways = {w: ZeroShotClassifier.load(confined(folder, w, "way folder")) for w in names}
        except UnsafeFileError as e:
            raise ModelFolderError(str(e)) from None
        first = next(iter(ways.values()))
        classes = [str(c) for c in first.classes_]
        # a folder whose config sets a flag of SAVED_KINDS loads as that subclass (zeroshot.tags: "tags")
        kind = next((k for flag, k in SAVED_KINDS.items() if meta.get(flag)), cls)
        self = kind(classes, encoder=meta["encoder"], text_model=meta.get("text_model") or first.text_model,
                    method=first.method, view=meta["view"])
        self.view_, self.ways_, self.classes_ = meta["view"], ways, np.asarray(classes, dtype=object)
        self.centered_ = bool(getattr(first, "image_mean_", None) is not None)
        try:
            return self._loaded(meta)
        except ValueError as e:
            raise ModelFolderError(f"{path}: {e}") from None

    def _loaded(self, config: dict) -> "ZeroShotPipeline":
        """A loaded pipeline, completed by a subclass from its ``config`` (the tags' prior: "none"
        out of ``classes_``, its offsets)."""
        return self
