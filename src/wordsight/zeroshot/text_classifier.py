"""Zero-shot classification in a text space, scikit-learn style.

Images arrive as text-space vectors (ConSE semantic vectors of an ImageNet CNN, a caption's
embedding, or a joint model's image embedding); classes arrive as words. ``fit`` embeds the class
texts once per class set (cached on disk), so prediction is one matrix product whatever the
number of classes.

Methods:
- ``names``: the class name alone.
- ``templates``: the mean embedding of prompt templates ("a photo of a {}.", ...).
- ``descriptions``: CuPL (Pratt et al. 2023): the normalised mean of the class's descriptions.
- ``descriptors``: Menon & Vondrick (2023): the mean similarity over the class's descriptors;
  per-descriptor similarities are kept as evidence (:meth:`ZeroShotClassifier.explain`).
- ``waffle``: WaffleCLIP (Roth et al. 2023): descriptors made of random words and characters,
  the sanity baseline that description-based numbers are shown beside.
"""
from __future__ import annotations

import random
import string
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from .._util.numerics import l2_normalize
from ..text._text import display_name, embed_texts, text_encoder, text_model_name

METHODS = ("names", "templates", "descriptions", "descriptors", "waffle")
FORMAT, FORMAT_VERSION = "wordsight-zero-shot-classifier", 1
CONFIG, ARRAYS_FILE = "zeroshot.json", "class_embeddings.safetensors"  # its saved folder (wordsight.storage)

# A few of CLIP's ImageNet prompt templates (Radford et al. 2021, the 7 + 1 best ensemble).
DEFAULT_TEMPLATES = (
    "a photo of a {}.",
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
)

# Softmax temperature (logit scale) for text-only encoders: cosine similarities between ConSE
# vectors and class texts spread over ~0.1-0.3; on 1000 Fashion-MNIST training images the
# training NLL was lowest at 10 (1.88 nats; 30: 2.43, 100: 6.46; benchmarks/zeroshot_fashion_mnist.py).
# Joint models use their own logit scale.
DEFAULT_TEXT_SCALE = 10.0


@lru_cache(maxsize=1)
def waffle_words() -> tuple[str, ...]:
    text = resources.files("wordsight.zeroshot").joinpath("data/waffle_words.txt").read_text(encoding="utf-8")
    return tuple(w.strip() for w in text.splitlines() if w.strip() and not w.startswith("#"))


def waffle_descriptors(name: str, k: int, seed: int = 0) -> list[str]:
    """``k`` WaffleCLIP-style descriptors: alternately two random words and two random character
    strings, seeded per class name (so a class keeps its descriptors whatever the class set)."""
    rng = random.Random(f"{seed}|{name}")
    words = waffle_words()
    out = []
    for i in range(k):
        if i % 2 == 0:
            noise = " ".join(rng.choice(words) for _ in range(2))
        else:
            noise = " ".join("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 8)))
                             for _ in range(2))
        out.append(f"{display_name(name)}, which has {noise}.")
    return out


class ZeroShotClassifier(ClassifierMixin, BaseEstimator):
    """Classify text-space vectors into ``classes`` from words alone.

    Parameters (stored as given; ``fit`` does the work):
    - ``classes``: class names (the labels ``predict`` returns).
    - ``descriptions``: ``{class: [texts]}``, or a path to such a JSON file; ``None`` with a
      description method asks ``llm`` (cached per class set in the wordsight cache).
    - ``method``: one of :data:`METHODS`.
    - ``text_model``: the text side: ``minilm`` (default, for ConSE vectors and captions), any
      ``st:...``, or the same ``clip:...`` joint model whose image embeddings you classify.
    - ``templates``: prompt templates with ``{}`` for the ``templates`` method.
    - ``llm``, ``llm_options``, ``k``, ``seed``: how missing descriptions are generated;
      ``k`` is also the number of random descriptors per class for ``waffle``.
    - ``scale``: softmax logit scale for ``predict_proba`` (default: the joint model's own, else
      :data:`DEFAULT_TEXT_SCALE`).
    - ``include_name``: description texts read ``"{name}: {description}"`` unless the description
      already names the class (small LLMs often don't).
    - ``center``: when ``fit`` gets images ``X`` (unlabelled, in the text space), remember their
      mean and subtract it from every image before comparing (removes the direction that all
      images of a domain share, which otherwise pulls them all towards the same classes; +2-5
      points on Fashion-MNIST training images, measured with their own mean). A number in (0, 1]
      subtracts that share of the mean (the few-shot prior's, :mod:`~wordsight.zeroshot.pipeline`
      ``center="others"``).
    """

    def __init__(self, classes=None, descriptions=None, method: str = "descriptions", text_model="minilm",
                 templates=None, llm="local", llm_options=None, k: int = 5, seed: int = 0,
                 scale: float | None = None, include_name: bool = True, center: bool | float = True):
        self.classes = classes
        self.descriptions = descriptions
        self.method = method
        self.text_model = text_model
        self.templates = templates
        self.llm = llm
        self.llm_options = llm_options
        self.k = k
        self.seed = seed
        self.scale = scale
        self.include_name = include_name
        self.center = center

    # ------------------------------------------------------------------------------ fitting
    def fit(self, X=None, y=None):
        """Build the class text features once. ``X``: optional unlabelled images in the text space,
        whose mean is subtracted at prediction when ``center`` is on; ``y`` is ignored."""
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {self.method!r}")
        classes = [str(c) for c in (self.classes if self.classes is not None else [])]
        if not classes:
            raise ValueError("ZeroShotClassifier needs classes (a list of class names)")
        if len(set(classes)) != len(classes):
            dup = sorted({c for c in classes if classes.count(c) > 1})
            raise ValueError(f"class names must be unique; repeated: {', '.join(dup)}")
        self.classes_ = np.asarray(classes, dtype=object)
        self.class_text_weights_ = None
        texts = self._class_texts(classes)
        flat = [t for c in classes for t in texts[c]]
        owner = np.repeat(np.arange(len(classes)), [len(texts[c]) for c in classes])
        emb = embed_texts(flat, self.text_model)
        self.class_texts_ = texts
        self.text_embeddings_ = emb
        self.text_owner_ = owner
        # One (C, D) matrix for every method: the (weighted) mean of a class's text embeddings.
        # Mean similarity (descriptors, waffle) is the dot product with the plain mean; CuPL-style
        # ensembles (names, templates, descriptions) renormalise the mean first. Weights come from
        # a descriptions file (``wordsight describe-classes`` writes them; 1 when absent).
        weights = self._text_weights(classes, texts)
        sums = np.zeros(len(classes), np.float32)
        np.add.at(sums, owner, weights)
        means = np.zeros((len(classes), emb.shape[1]), np.float32)
        np.add.at(means, owner, emb * weights[:, None])
        means /= sums[:, None]
        self.class_embeddings_ = means if self.method in ("descriptors", "waffle") else l2_normalize(means)
        self.scale_ = float(self.scale) if self.scale is not None else self._default_scale()
        self.n_features_in_ = int(emb.shape[1])
        self.image_mean_ = None
        share = _center_share(self.center)
        if X is not None and share:
            X = self._shape(X)
            if len(X) < 2:
                raise ValueError("centring needs the mean of several images; fit with more images or center=False")
            self.image_mean_ = (share * l2_normalize(X).mean(0)).astype(np.float32)
        return self

    def _text_weights(self, classes, texts) -> np.ndarray:
        w = self.class_text_weights_
        if w is None:
            return np.ones(sum(len(texts[c]) for c in classes), np.float32)
        return np.asarray([x for c in classes for x in w[c]], np.float32)

    def _default_scale(self) -> float:
        if isinstance(self.text_model, str) and self.text_model.split(":", 1)[0] == "clip":
            scale = getattr(text_encoder(self.text_model), "logit_scale", None)
            if scale:
                return float(scale)
        return DEFAULT_TEXT_SCALE

    def _class_texts(self, classes: list[str]) -> dict[str, list[str]]:
        names = {c: display_name(c) for c in classes}
        if self.method == "names":
            return {c: [names[c]] for c in classes}
        if self.method == "templates":
            templates = list(self.templates or DEFAULT_TEMPLATES)
            bad = [t for t in templates if "{}" not in t]
            if bad:
                raise ValueError(f"templates need a '{{}}' where the class name goes: {bad}")
            return {c: [t.format(names[c]) for t in templates] for c in classes}
        if self.method == "waffle":
            return {c: waffle_descriptors(c, self.k, self.seed) for c in classes}
        from ..text.descriptions import entry_text, entry_weight

        descriptions = self._descriptions(classes)
        texts, weights = {}, {}
        for c in classes:
            # weight 0: dropped (kept in the file so that a person can see and restore it)
            kept = [(entry_text(d).strip(), entry_weight(d)) for d in descriptions.get(c, [])
                    if entry_text(d) and entry_text(d).strip() and entry_weight(d) > 0]
            if not kept:
                texts[c], weights[c] = [names[c]], [1.0]
                continue
            ds = [d for d, _ in kept]
            if self.include_name:
                ds = [d if names[c].lower() in d.lower() else f"{names[c]}: {d}" for d in ds]
            texts[c], weights[c] = ds, [w for _, w in kept]
        if any(w != 1.0 for ws in weights.values() for w in ws):
            self.class_text_weights_ = weights
        return texts

    def _descriptions(self, classes: list[str]) -> dict[str, list[str]]:
        from ..text.descriptions import cached_class_descriptions, descriptions_for, load_class_descriptions

        d = self.descriptions
        if d is None:
            return cached_class_descriptions(classes, self.llm, k=self.k, seed=self.seed, **(self.llm_options or {}))
        if isinstance(d, (str, Path)):
            return load_class_descriptions(d, classes)
        if not isinstance(d, dict):
            raise TypeError(
                f"descriptions must be a dict {{class: [texts]}} or a JSON file path, not {type(d).__name__}"
            )
        return descriptions_for(d, classes)

    # --------------------------------------------------------------------------- prediction
    def _shape(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if X.ndim == 1:
            X = X[None]
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X must be (N, {self.n_features_in_}) vectors in the space of "
                             f"{text_model_name(self.text_model)!r}, got shape {X.shape}")
        return X

    def _check(self, X) -> np.ndarray:
        if not hasattr(self, "class_embeddings_"):
            self.fit()
        X = l2_normalize(self._shape(X))
        if getattr(self, "image_mean_", None) is not None:
            X = l2_normalize(X - self.image_mean_)
        return X

    def decision_function(self, X) -> np.ndarray:
        """(N, C) cosine similarities (mean similarities for descriptors/waffle)."""
        return self._check(X) @ self.class_embeddings_.T

    def predict_log_proba(self, X) -> np.ndarray:
        """Log-softmax of the scaled cosine scores against each class's text vector."""
        z = self.decision_function(X) * self.scale_
        z -= z.max(1, keepdims=True)
        return z - np.log(np.exp(z).sum(1, keepdims=True))

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, the exponential of :meth:`predict_log_proba`."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X) -> np.ndarray:
        """The best-scoring class of each row."""
        scores = self.decision_function(X)  # fits on first use, which sets classes_
        return self.classes_[np.argmax(scores, axis=1)]

    def explain(self, X, top: int = 3, classes=None) -> list[dict]:
        """Per image, the predicted class (or the given ``classes``, one per row) with the class
        texts that matched best: ``{"class", "score", "evidence": [(text, similarity), ...]}``."""
        X = self._check(X)
        scores = X @ self.class_embeddings_.T
        index = {c: i for i, c in enumerate(self.classes_)}
        out = []
        for r in range(len(X)):
            c = int(np.argmax(scores[r])) if classes is None else index[str(classes[r])]
            rows = np.flatnonzero(self.text_owner_ == c)
            sims = self.text_embeddings_[rows] @ X[r]
            order = np.argsort(-sims)[:top]
            texts = self.class_texts_[self.classes_[c]]
            out.append({"class": str(self.classes_[c]), "score": float(scores[r, c]),
                        "evidence": [(texts[i], float(sims[i])) for i in order]})
        return out

    # --------------------------------------------------------------------------- persistence
    def save(self, folder) -> Path:
        """A :mod:`wordsight.storage` folder (written atomically) with ``zeroshot.json``
        (parameters, classes, class texts, checksums) and ``class_embeddings.safetensors``."""
        from ..storage import write_folder

        if not hasattr(self, "class_embeddings_"):
            self.fit()
        write_folder(folder, self._write, config_name=CONFIG)
        return Path(folder)

    def _write(self, folder: Path) -> dict:
        from safetensors.numpy import save_file

        from .._version import __version__

        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "library_version": __version__,
                "method": self.method, "text_model": text_model_name(self.text_model), "k": self.k,
                "seed": self.seed, "scale": self.scale_, "include_name": self.include_name, "center": self.center,
                "classes": [str(c) for c in self.classes_], "class_texts": self.class_texts_}
        if getattr(self, "class_text_weights_", None) is not None:
            meta["class_text_weights"] = self.class_text_weights_
        arrays = {"text_embeddings": self.text_embeddings_, "text_owner": self.text_owner_.astype(np.int64),
                  "class_embeddings": self.class_embeddings_}
        if self.image_mean_ is not None:
            arrays["image_mean"] = self.image_mean_
        save_file(arrays, str(folder / ARRAYS_FILE))
        return meta

    @classmethod
    def load(cls, folder) -> "ZeroShotClassifier":
        """A classifier written by :meth:`save`, every file verified (a folder saved before
        checksums, without them, is read confined and bounded)."""
        from ..storage import ModelFolderError, read_folder

        stored = read_folder(folder, (FORMAT,), version=FORMAT_VERSION, what="zero-shot classifier",
                             config_name=CONFIG, legacy=True)
        arrays = stored.arrays(ARRAYS_FILE)
        try:
            return cls._rebuild(stored.config, arrays)
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFolderError(f"{stored.path / CONFIG}: not a zero-shot classifier this wordsight reads "
                                   f"({type(e).__name__}: {e})") from None

    @classmethod
    def _rebuild(cls, meta: dict, arrays: dict) -> "ZeroShotClassifier":
        descriptions = meta["class_texts"] if meta["method"] in ("descriptions", "descriptors") else None
        weights = meta.get("class_text_weights")
        if descriptions and weights:
            descriptions = {c: [{"text": t, "weight": w} for t, w in zip(descriptions[c], weights[c])]
                            for c in descriptions}
        model = cls(meta["classes"], descriptions=descriptions, method=meta["method"], text_model=meta["text_model"],
                    k=meta["k"], seed=meta["seed"], scale=meta["scale"], include_name=meta["include_name"],
                    center=meta.get("center", True))
        model.classes_ = np.asarray(meta["classes"], dtype=object)
        model.class_texts_ = meta["class_texts"]
        model.class_text_weights_ = meta.get("class_text_weights")
        model.text_embeddings_ = arrays["text_embeddings"]
        model.text_owner_ = arrays["text_owner"]
        model.class_embeddings_ = arrays["class_embeddings"]
        model.scale_ = float(meta["scale"])
        model.n_features_in_ = int(model.class_embeddings_.shape[1])
        model.image_mean_ = arrays.get("image_mean")
        return model


def _center_share(center) -> float:
    """The share of the images' mean that ``center`` subtracts: True 1, False 0, or a number in [0, 1]."""
    if isinstance(center, (bool, np.bool_)):
        return float(center)
    if isinstance(center, (int, float, np.number)) and 0 <= float(center) <= 1:
        return float(center)
    raise ValueError(f"center must be True, False or a share in [0, 1], not {center!r}")
