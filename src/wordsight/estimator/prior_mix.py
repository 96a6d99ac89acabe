"""The language prior: the zero-shot pipeline's log-probabilities mixed into a trained head, with
every choice made on the training images only.

The prior itself is a :class:`~wordsight.zeroshot.pipeline.ZeroShotPipeline` (its view of each
image at full input size, both ways into the text space, centred on the training images). The
mixed prediction is ``log_softmax(s * head logits) + weight * log_softmax(t * prior logits)``
(:class:`PriorMix`); weight 0 is the image-only head. The prior's temperature ``t`` is fitted on
the training images (the zero-shot classifier never saw their labels, so its predictions on them
are honest held-out ones). The weight is chosen on the training images alone: "leave one shot
out" folds (fold j holds out the j-th image of every class, so every class keeps k-1 images; the
folds' heads keep the fitted head's penalty) give the head's held-out predictions, on which the
head's own temperature ``s`` is fitted, so that both are calibrated before they are weighed (a
strongly penalised head is timid, and a prior would overrule it more than it deserves). With one
image per class no fold keeps every class; the held-out images are then augmented views of the
training images (an optimistic stand-in for new images, so the chosen weight errs towards the
image head; as the head gets nearly every view right, the log-loss decides among the weights
that lose no view). With folds, a weight above 0 is kept only when it gets at least ``MIN_GAIN``
more held-out images right than the head alone; ties go to the smaller weight.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .._util.numerics import log_softmax
from .heads import fit_temperature

# With leave-one-shot-out folds a prior weight above 0 must get at least this many more held-out
# images right than the image head alone (on augmented views the head is right about every view,
# so there the log-loss decides among the weights that lose nothing).
MIN_GAIN = 1
# Large weights are there for heads that are very sure of themselves (a large C).
WEIGHT_GRID = (0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


def mix(head_logits: np.ndarray, prior_logits: np.ndarray, weight: float, temperature: float,
        head_temperature: float = 1.0) -> np.ndarray:
    """Log-probabilities (unnormalised) of the mixed prediction (weight 0: the head alone)."""
    if weight == 0:
        return log_softmax(head_logits)
    return log_softmax(head_temperature * head_logits) + weight * log_softmax(temperature * prior_logits)


@dataclass
class PriorMix:
    """How the prior enters a head's logits: ``weight``, the prior's ``temperature``, the head's
    ``head_temperature`` and the held-out ``scores`` the weight was chosen on."""

    weight: float = 0.0
    temperature: float = 1.0
    head_temperature: float = 1.0
    scores: dict = field(default_factory=dict)

    def __call__(self, head_logits: np.ndarray, prior_logits: np.ndarray) -> np.ndarray:
        return mix(head_logits, prior_logits, self.weight, self.temperature, self.head_temperature)

    def torch(self, head_logits, prior_logits):
        """The same mixing in torch (``prior_logits`` enter as a constant)."""
        import torch

        if self.weight == 0:
            return torch.log_softmax(head_logits, 1)
        return (torch.log_softmax(self.head_temperature * head_logits, 1)
                + self.weight * torch.log_softmax(self.temperature * prior_logits.to(head_logits.dtype), 1))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "PriorMix":
        return cls(float(d["weight"]), float(d["temperature"]), float(d.get("head_temperature", 1.0)),
                   dict(d.get("scores") or {}))


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
    """The scale t that calibrates the prior's log-probabilities on labelled images."""
    return fit_temperature(prior_logits, y)


def choose_mix(make_head, M: np.ndarray, view_M: list[np.ndarray], prior: np.ndarray, y: np.ndarray,
               n_classes: int, head, extra_views, seed: int = 0) -> PriorMix:
    """Fit the prior's temperature and choose its weight on the training images (module doc).

    ``make_head()`` builds an unfitted head like ``head`` (same penalty); ``M`` are the fused
    training rows, ``view_M`` their augmented views' rows; ``extra_views()`` returns fused rows of
    new augmented views (list of arrays), for when there is one image per class and no views.
    """
    t = prior_temperature(prior, y)
    folds = leave_one_shot_out_folds(y, seed)
    if folds:
        held_head = np.zeros((len(y), n_classes))
        for tr, va in folds:
            Xtr = np.concatenate([M[tr]] + [v[tr] for v in view_M]).astype(np.float64)
            held_head[va] = make_head().fit(Xtr, np.tile(y[tr], 1 + len(view_M)), n_classes).logits(M[va])
        held_prior, held_y, how = prior, y, f"leave-one-shot-out ({len(folds)} folds)"
        min_gain, head_t = MIN_GAIN, prior_temperature(held_head, y)
    else:
        rows = view_M or (extra_views() if extra_views is not None else [])
        if not rows:
            return PriorMix(
                0.0, t, 1.0, {"how": "no held-out data (one image per class, no images for views): image-only"}
            )
        # the prior never saw the training images, so its predictions on them stand for its
        # predictions on each view
        held_head = np.concatenate([head.logits(r) for r in rows])
        held_prior, held_y = np.tile(prior, (len(rows), 1)), np.tile(y, len(rows))
        how = f"augmented views of the training images ({len(rows)} per image)"
        head_t, min_gain = 1.0, 0
    w, scores = choose_weight(head_t * held_head, held_prior, held_y, t, min_gain=min_gain)
    return PriorMix(w, t, head_t, {"how": how, "scores": scores})
