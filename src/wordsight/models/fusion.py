"""Feature blocks and how they are fused into the one matrix a head sees.

Blocks (computed once per image and reused by every fusion mode):
- ``image:<encoder>``: the encoder's pooled embedding, L2-normalised (so that several encoders
  weigh alike when concatenated: model fusion);
- ``text``: the ConSE semantic vector (a point in the text encoder's space, from the ImageNet
  probabilities of the first encoder that has an ImageNet head), L2-normalised, times
  ``text_weight``.

Fusion modes: ``image`` (image blocks), ``text`` (the text block), ``concat`` (both), ``prior``
(image blocks for the head, plus the zero-shot classifier's logits mixed into the head's; see
:mod:`wordsight.models.prior`). The fused row is a plain concatenation, so
``fused = concat(e_1/|e_1|, ..., e_m/|e_m|[, text_weight * s])`` is all an explanation needs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FUSIONS = ("image", "text", "concat", "prior")


def l2n(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, np.float32)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


@dataclass
class FeatureBlocks:
    """Per-image features before fusion: ``embeddings[encoder][i]`` and ``probs[i]`` (ImageNet
    softmax of ``probs_encoder``) belong to ``samples[i]``; ``failures`` were skipped."""

    samples: list
    embeddings: dict[str, np.ndarray]
    probs: np.ndarray | None = None
    probs_encoder: str | None = None
    failures: list = field(default_factory=list)
    views: dict[int, "FeatureBlocks"] = field(default_factory=dict)  # augmented views, by index
    # The language prior's reading of the images, by (encoder, view): ImageNet probabilities and
    # embeddings of that view at full input size; filled on first use by Classifier.prior_features,
    # or given (explanations).
    prior_features: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> list:
        return [getattr(s, "label", None) for s in self.samples]

    def take(self, idx) -> "FeatureBlocks":
        idx = np.asarray(idx, np.int64)
        return FeatureBlocks([self.samples[i] for i in idx], {k: v[idx] for k, v in self.embeddings.items()},
                             None if self.probs is None else self.probs[idx], self.probs_encoder, [],
                             {v: b.take(idx) for v, b in self.views.items()},
                             {k: tuple(a[idx] for a in v) for k, v in self.prior_features.items()})


def block_layout(encoders, dims: dict[str, int], fusion: str, text_dim: int | None) -> list[dict]:
    """The fused row's blocks in order: name, start, stop, and how each is computed."""
    blocks, start = [], 0
    if fusion in ("image", "concat", "prior"):
        for e in encoders:
            blocks.append({"name": f"image:{e}", "start": start, "stop": start + dims[e],
                           "computed": f"L2-normalised pooled embedding of {e}"})
            start += dims[e]
    if fusion in ("text", "concat"):
        blocks.append({"name": "text", "start": start, "stop": start + int(text_dim or 0),
                       "computed": "text_weight * ConSE semantic vector (L2-normalised)"})
    return blocks


def fuse(blocks: FeatureBlocks, encoders, fusion: str, semantic: np.ndarray | None,
         text_weight: float = 1.0) -> np.ndarray:
    if fusion not in FUSIONS:
        raise ValueError(f"unknown fusion {fusion!r}: choose one of {', '.join(FUSIONS)}")
    parts = []
    if fusion in ("image", "concat", "prior"):
        parts += [l2n(blocks.embeddings[e]) for e in encoders]
    if fusion in ("text", "concat"):
        if semantic is None:
            raise ValueError(f"fusion {fusion!r} needs ImageNet probabilities (an encoder with an ImageNet head)")
        parts.append(float(text_weight) * l2n(semantic))
    return np.concatenate(parts, 1).astype(np.float32) if parts else np.zeros((len(blocks), 0), np.float32)
