"""The zero-shot language prior, and mixing it into a trained head with choices made on training
data only.

:class:`LanguagePrior` is the zero-shot text classifier of the language layer, read the way that
suits the images: the image view it looks at (``light-background`` inverts light-on-dark images
such as Fashion-MNIST so that the ImageNet head reads them like its product photos), always at the
encoder's full input size (the ImageNet head was trained at it), through two ways into the text
space whose log-probabilities are averaged: ConSE (the probability-weighted concept texts) and
the DeViSE-style linear map of the embedding; both centred on the training images.

The mixed prediction is ``log_softmax(s * head logits) + weight * log_softmax(t * prior logits)``:
weight 0 is the image-only head. The prior's temperature ``t`` is fitted on the training images
(the zero-shot classifier never saw their labels, so its predictions on them are honest held-out
ones). The weight is chosen on the training images alone: "leave one shot out" folds (fold j
holds out the j-th image of every class, so every class keeps k-1 images; the folds' heads keep
the fitted head's penalty) give the head's held-out predictions, on which the head's own
temperature ``s`` is fitted, so that both are calibrated before they are weighed (a strongly
penalised head is timid, and a prior would overrule it more than it deserves). With one image per class no fold keeps every class; the held-out images are
then augmented views of the training images (an optimistic stand-in for new images, so the
chosen weight errs towards the image head; as the head gets nearly every view right, the log-loss
decides among the weights that lose no view). The prior must earn its place: with folds, a weight
above 0 is kept only when it gets at least ``MIN_GAIN`` more held-out images right than the head
alone; ties go to the smaller weight.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from .heads import fit_temperature, log_softmax

# With leave-one-shot-out folds a prior weight above 0 must get at least this many more held-out
# images right than the image head alone (on augmented views the head is right about every view,
# so there the log-loss decides among the weights that lose nothing).
MIN_GAIN = 1
# Large weights are there for heads that are very sure of themselves (a large C).
WEIGHT_GRID = (0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
PRIOR_VIEWS = ("auto", "plain", "light-background", "invert")
# Ridge strength of the linear map into the text space, chosen on Fashion-MNIST training images
# (benchmarks/zeroshot_fashion_mnist.py).
TEXT_MAP_ALPHA = 10.0


def choose_view(images, threshold: float = 96.0) -> str:
    """``light-background`` when most ``images`` (PIL) have a dark border (a light object on a
    dark background, unlike ImageNet's photos), else ``plain``."""
    from ..language.views import border_brightness

    levels = [border_brightness(im) for im in images]
    return "light-background" if levels and float(np.median(levels)) < threshold else "plain"


@lru_cache(maxsize=4)
def _text_map(encoder: str, text_model: str):
    from ..language.concepts import default_bank
    from ..language.semantic import TextSpaceMap

    return TextSpaceMap.from_encoder(encoder, default_bank(text_model), alpha=TEXT_MAP_ALPHA)


class LanguagePrior:
    """Zero-shot log-probabilities of images from the ImageNet probabilities and embeddings of
    ``encoder`` on the ``view`` of each image at full input size (see the module doc)."""

    def __init__(self, encoder: str, view: str, conse, linear=None, text_map=None):
        self.encoder, self.view = encoder, view
        self.conse, self.linear, self.text_map = conse, linear, text_map

    @classmethod
    def fit(cls, zero_shot, encoder: str, view: str, probs: np.ndarray, embeddings: np.ndarray) -> "LanguagePrior":
        """``zero_shot``: an unfitted ZeroShotClassifier (classes, texts, method); ``probs`` and
        ``embeddings``: the training images seen the prior's way (the centring means)."""
        from sklearn.base import clone

        from ..encoders import get_config
        from ..language import semantic_vectors
        from ..language.concepts import default_bank

        bank = default_bank(zero_shot.text_model)
        center = len(probs) >= 2
        conse = clone(zero_shot).set_params(center=center).fit(semantic_vectors(probs, bank) if center else None)
        linear = text_map = None
        if get_config(encoder).has_imagenet_head:
            text_map = _text_map(encoder, zero_shot.text_model)
            linear = clone(conse).fit(text_map.transform(embeddings) if center else None)
        return cls(encoder, view, conse, linear, text_map)

    @property
    def classes_(self):
        return self.conse.classes_

    def ways(self, probs: np.ndarray, embeddings: np.ndarray) -> dict[str, np.ndarray]:
        """Log-probabilities per way into the text space."""
        from ..language import semantic_vectors
        from ..language.concepts import default_bank

        out = {"conse": self.conse.predict_log_proba(semantic_vectors(probs, default_bank(self.conse.text_model)))}
        if self.linear is not None:
            out["linear"] = self.linear.predict_log_proba(self.text_map.transform(embeddings))
        return out

    def log_proba(self, probs: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
        """(N, n_classes) log-probabilities: the mean over the ways, renormalised."""
        ways = self.ways(probs, embeddings)
        return log_softmax(sum(ways.values()) / len(ways))

    def save(self, folder) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.conse.save(folder / "conse")
        if self.linear is not None:
            self.linear.save(folder / "linear")
            self.text_map.save(folder / "text_map")
        meta = {"encoder": self.encoder, "view": self.view, "ways": ["conse"] + (["linear"] if self.linear else [])}
        (folder / "prior.json").write_text(json.dumps(meta, indent=2))
        return folder

    @classmethod
    def load(cls, folder) -> "LanguagePrior":
        from ..language import ZeroShotClassifier
        from ..language.semantic import TextSpaceMap

        folder = Path(folder)
        if not (folder / "prior.json").exists():
            raise FileNotFoundError(f"{folder / 'prior.json'}: missing (not a saved language prior)")
        meta = json.loads((folder / "prior.json").read_text())
        linear = "linear" in meta["ways"]
        return cls(meta["encoder"], meta["view"], ZeroShotClassifier.load(folder / "conse"),
                   ZeroShotClassifier.load(folder / "linear") if linear else None,
                   TextSpaceMap.load(folder / "text_map") if linear else None)


def mix(head_logits: np.ndarray, prior_logits: np.ndarray, weight: float, temperature: float,
        head_temperature: float = 1.0) -> np.ndarray:
    """Log-probabilities (unnormalised logits) of the mixed prediction."""
    if weight == 0:
        return log_softmax(head_logits)
    return log_softmax(head_temperature * head_logits) + weight * log_softmax(temperature * prior_logits)


def leave_one_shot_out_folds(y: np.ndarray, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds that each hold out one image of every class (classes with fewer images than folds
    stay in training); empty when some class has a single image."""
    counts = np.bincount(y)
    counts = counts[counts > 0]
    k = int(counts.min()) if len(counts) else 0
    if k < 2:
        return []
    n_folds = min(k, 5)
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), np.int64)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        fold_of[idx] = np.arange(len(idx)) % n_folds
    return [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)) for f in range(n_folds)]


def choose_weight(held_head_logits: np.ndarray, held_prior_logits: np.ndarray, y: np.ndarray,
                  temperature: float, grid=WEIGHT_GRID, min_gain: int = MIN_GAIN) -> tuple[float, dict]:
    """The weight with the best held-out accuracy (ties: lower log-loss, then smaller weight), if
    it gets at least ``min_gain`` more held-out images right than the image head alone; else 0."""
    scores = {}
    for w in grid:
        z = mix(held_head_logits, held_prior_logits, w, temperature)
        lp = log_softmax(z)
        correct = int(np.sum(z.argmax(1) == y))
        nll = float(-lp[np.arange(len(y)), y].mean())
        scores[float(w)] = (correct, nll)
    best = max(scores, key=lambda w: (scores[w][0], -round(scores[w][1], 6), -w))
    if scores[best][0] - scores.get(0.0, (0, 0))[0] < min_gain:
        best = 0.0
    return best, {str(w): {"accuracy": c / len(y), "log_loss": n} for w, (c, n) in scores.items()}


def prior_temperature(prior_logits: np.ndarray, y: np.ndarray) -> float:
    return fit_temperature(prior_logits, y)
