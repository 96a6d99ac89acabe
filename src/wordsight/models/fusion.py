"""Feature blocks and the fusions that turn them into the one matrix a head sees.

Blocks (computed once per image and reused by every fusion):
- ``image:<encoder>``: the encoder's pooled embedding, L2-normalised (so that several encoders
  weigh alike when concatenated: model fusion);
- ``text``: the ConSE semantic vector (a point in the text encoder's space, from the ImageNet
  probabilities of the first encoder that has an ImageNet head), L2-normalised, times
  ``text_weight``;
- ``paired_text``: the embedding of the image's own text (:mod:`.paired`), L2-normalised, NaN for
  an image without text (never zero-filled: the image alone decides for it).

Fusions: ``image`` (image blocks), ``text`` (the text block), ``concat`` (both), ``prior`` (image
blocks for the head, plus the zero-shot language prior mixed into the head's logits; see
:mod:`wordsight.models.prior`), ``paired`` (image blocks and ``paired_text_weight`` times the own
text, one head) and ``late`` (image blocks and the own text, a head on each; see :mod:`.paired`).
Each fusion computes the fused row once in numpy (``fuse``) and once in torch (``fuse_torch``, for
explanations); a parity test keeps them equal.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np

from .._util.numerics import l2_normalize, l2_normalize_torch


class Fusion:
    """How blocks become the fused row: ``fuse`` (numpy), ``fuse_torch`` (torch), ``layout``."""

    name: ClassVar[str] = ""
    image: ClassVar[bool] = True   # the image blocks are part of the row
    text: ClassVar[bool] = False   # the text block is part of the row
    prior: ClassVar[bool] = False  # the language prior is mixed into the head's logits
    paired: ClassVar[bool] = False  # the image's own text is part of the row (models.paired)
    paired_scaled: ClassVar[bool] = False  # ... times paired_text_weight (else the weight mixes two heads)

    def __init__(self, encoders, text_weight: float = 1.0, paired_text_weight: float = 1.0):
        self.encoders = [encoders] if isinstance(encoders, str) else list(encoders)
        self.text_weight = float(text_weight)
        self.paired_text_weight = float(paired_text_weight)

    @property
    def paired_block_weight(self) -> float:
        return self.paired_text_weight if self.paired_scaled else 1.0

    def fuse(self, embeddings: dict[str, np.ndarray], semantic: np.ndarray | None, n: int,
             paired_text: np.ndarray | None = None) -> np.ndarray:
        """(n, F) float32 fused rows from per-encoder embeddings, the ConSE vectors and the
        images' own text vectors (NaN rows where an image has none)."""
        parts = [l2_normalize(embeddings[e]) for e in self.encoders] if self.image else []
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

        parts = [l2_normalize_torch(embeddings[e].double()) for e in self.encoders] if self.image else []
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
                blocks.append({"name": f"image:{e}", "start": start, "stop": start + dims[e],
                               "computed": f"L2-normalised pooled embedding of {e}"})
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


class ImageFusion(Fusion):
    name = "image"


class TextFusion(Fusion):
    name, image, text = "text", False, True


class ConcatFusion(Fusion):
    name, text = "concat", True


class PriorFusion(Fusion):
    name, prior = "prior", True


class PairedFusion(Fusion):
    name, paired, paired_scaled = "paired", True, True


class LateFusion(Fusion):
    name, paired = "late", True


FUSION_CLASSES: dict[str, type[Fusion]] = {c.name: c for c in (ImageFusion, TextFusion, ConcatFusion, PriorFusion,
                                                              PairedFusion, LateFusion)}
FUSIONS = tuple(FUSION_CLASSES)


def make_fusion(name: str, encoders, text_weight: float = 1.0, paired_text_weight: float = 1.0) -> Fusion:
    """The :class:`Fusion` registered as ``name`` over ``encoders`` with its block weights."""
    if name not in FUSION_CLASSES:
        raise ValueError(f"unknown fusion {name!r}: choose one of {', '.join(FUSIONS)}")
    return FUSION_CLASSES[name](encoders, text_weight, paired_text_weight)
