"""The fusion interface: how feature blocks become the row a head sees, and how the head's
scores become the model's log-probabilities.

A fusion is a scikit-learn-style estimator part: its options are explicit keywords of its
``__init__`` (``get_params`` / ``set_params`` / ``clone`` work), and it is bound to the model's
image encoders (:meth:`Fusion.bind`) before it fuses. Each fusion computes the fused row once in
numpy (``fuse``) and once in torch (``fuse_torch``, for explanations), fits the head (and what it
learns besides: a prior, a second head) in ``fit``, and turns the fitted head's scores into
log-probabilities in ``logits`` (numpy) and ``logits_torch``; parity tests keep the forms equal.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, clone

from ..._util.numerics import l2_normalize, l2_normalize_torch
from ...encoders.tilebag import instances


def image_block(embedding: np.ndarray, encoder: str) -> np.ndarray:
    """An encoder's block of the fused row: its embedding L2-normalised, each instance on its own
    for an encoder that holds several side by side (a tile bag's tiles, :func:`~wordsight.encoders.tilebag.instances`)."""
    k = instances(encoder)
    if k == 1 or embedding.shape[1] == 0:
        return l2_normalize(embedding)
    n, width = embedding.shape  # no row: (0, k * D) (the -1 of a reshape cannot be read off no rows)
    return l2_normalize(np.asarray(embedding).reshape(n, k, width // k)).reshape(n, width)


def image_block_torch(embedding, encoder: str):
    """:func:`image_block` in torch (float64, the norm a constant for gradients)."""
    k = instances(encoder)
    if k == 1 or embedding.shape[1] == 0:
        return l2_normalize_torch(embedding.double())
    return l2_normalize_torch(embedding.double().reshape(embedding.shape[0], k, -1)).reshape(embedding.shape[0], -1)


def training_rows(M: np.ndarray, view_M: list[np.ndarray], y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fused training rows and their augmented views' rows stacked (float64), the targets tiled."""
    return np.concatenate([M, *view_M]).astype(np.float64), np.concatenate([y] * (1 + len(view_M)))  # 1-D or 2-D


class Fusion(BaseEstimator):
    """How blocks become the fused row (``fuse``, ``fuse_torch``, ``layout``), how the head is fitted
    on it (``fit``) and how its scores become log-probabilities (``logits``, ``logits_torch``).
    The class flags say which blocks form the row and whether a prior is mixed in."""

    name: ClassVar[str] = ""
    image: ClassVar[bool] = True   # the image blocks are part of the row
    text: ClassVar[bool] = False   # the text block is part of the row
    prior: ClassVar[bool] = False  # the language prior is mixed into the head's logits
    paired: ClassVar[bool] = False  # the image's own text is part of the row (models.paired)
    paired_scaled: ClassVar[bool] = False  # ... times the fusion's weight (else the weight mixes two heads)
    _parameter_constraints: ClassVar[dict] = {}
    text_weight: float = 1.0  # the text block's scale (a parameter of the fusions that have one)
    encoders: tuple[str, ...] = ()  # the image encoders, in row order (set by bind)

    def bind(self, encoders) -> "Fusion":
        """An unfitted copy of this fusion over the image ``encoders`` (a name or a sequence)."""
        bound = clone(self)
        bound.encoders = (encoders,) if isinstance(encoders, str) else tuple(encoders)
        return bound

    @property
    def needs_images(self) -> bool:
        """Whether the row needs more than image embeddings (a precomputed matrix cannot serve)."""
        return self.text or self.prior or self.paired

    @property
    def paired_block_weight(self) -> float:
        """Scale of the image's own-text block in the fused row (1.0 where no fusion weighs it)."""
        return 1.0

    # ------------------------------------------------------------------ the fused row
    def fuse(self, embeddings: dict[str, np.ndarray], semantic: np.ndarray | None, n: int,
             paired_text: np.ndarray | None = None) -> np.ndarray:
        """(n, F) float32 fused rows from per-encoder embeddings, the ConSE vectors and the
        images' own text vectors (NaN rows where an image has none)."""
        parts = [image_block(embeddings[e], e) for e in self.encoders] if self.image else []
        if self.text:
            if semantic is None:
                raise ValueError(
                    f"fusion {self.name!r} needs ImageNet probabilities (an encoder with an ImageNet head)"
                )
            parts.append(self.text_weight * l2_normalize(semantic))
        if self.paired:
            if paired_text is None:
                raise ValueError(f"fusion {self.name!r} needs the images' own text vectors")
            parts.append(self.paired_block_weight * l2_normalize(paired_text))  # NaN rows stay NaN
        return np.concatenate(parts, 1).astype(np.float32) if parts else np.zeros((n, 0), np.float32)

    def fuse_torch(self, embeddings: dict, semantic, paired_text=None):
        """The same rows in torch (float64), differentiable through the embeddings."""
        import torch

        parts = [image_block_torch(embeddings[e], e) for e in self.encoders] if self.image else []
        if self.text:
            parts.append(self.text_weight * l2_normalize_torch(semantic.double()))
        if self.paired:
            parts.append(self.paired_block_weight * l2_normalize_torch(paired_text.double()))
        return torch.cat(parts, 1)

    def layout(self, dims: dict[str, int], text_dim: int | None, paired_dim: int | None = None) -> list[dict]:
        """The fused row's blocks in order: name, start, stop, and how each is computed."""
        blocks, start = [], 0
        if self.image:
            for e in self.encoders:
                k = instances(e)
                blocks.append({"name": f"image:{e}", "start": start, "stop": start + dims[e],
                               "computed": f"L2-normalised pooled embedding of {e}" if k == 1 else
                               f"{e}'s {k} tiles' pooled embeddings side by side, each L2-normalised",
                               **({"instances": k} if k > 1 else {})})
                start += dims[e]
        if self.text:
            blocks.append({"name": "text", "start": start, "stop": start + int(text_dim or 0),
                           "computed": "text_weight * ConSE semantic vector (L2-normalised)"})
            start += int(text_dim or 0)
        if self.paired:
            blocks.append({"name": "paired_text", "start": start, "stop": start + int(paired_dim or 0),
                           "computed": ("paired_text_weight * " if self.paired_scaled else "")
                           + "the image's own text embedded by the text model (L2-normalised; NaN without text)"})
        return blocks

    # ------------------------------------------------------------------ fit and predict
    def fit(self, model, blocks, M: np.ndarray, view_M: list[np.ndarray], y: np.ndarray, head):
        """Fit ``head`` (an unfitted :class:`~..heads.Head`) on the fused training rows ``M`` and
        their augmented views' rows ``view_M`` (``y``: class indices of ``model.classes_``), and
        learn what this fusion needs besides; returns the fitted head."""
        return head.fit(*training_rows(M, view_M, y), len(model.classes_))

    def out_of_fold_proba(self, M: np.ndarray, Y: np.ndarray, splits) -> np.ndarray | None:
        """Out-of-fold probabilities of the training rows ``M`` (label sets ``Y``, folds ``splits``)
        where this fusion adds to the head's scores; None: the head's own are the model's."""
        return None

    def prior_logits(self, model, blocks) -> np.ndarray | None:
        """The language prior's log-probabilities for ``blocks`` (None: this fusion has no prior)."""
        return None

    def logits(self, head, fused: np.ndarray, prior_logits: np.ndarray | None) -> np.ndarray:
        """Log-probabilities of fused rows from the fitted ``head`` (:meth:`~..heads.Head.log_output`:
        over classes, or per label for a head fitted on label sets)."""
        return head.log_output(head.logits(np.asarray(fused, np.float64)))

    def logits_torch(self, head, fused, prior_logits, torch_form):
        """Scores in torch whose softmax equals :meth:`logits`'s; ``torch_form(part)`` is the
        cached ``part.to_torch()``. Here the head's own scores (Grad-CAM differentiates a class
        score, not its log-probability)."""
        return torch_form(head)(fused)
