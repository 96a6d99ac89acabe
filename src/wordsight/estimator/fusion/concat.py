"""The fusions that only choose blocks: image embeddings, the ConSE text vector, or both.

Blocks (computed once per image and reused by every fusion):
- ``image:<encoder>``: the encoder's pooled embedding, L2-normalised (so that several encoders
  weigh alike when concatenated: model fusion);
- ``text``: the ConSE semantic vector (a point in the text encoder's space, from the ImageNet
  probabilities of the first encoder that has an ImageNet head), L2-normalised, times
  ``text_weight``.
"""
from __future__ import annotations

from numbers import Real

from sklearn.utils._param_validation import Interval

from .base import Fusion

TEXT_WEIGHT = {"text_weight": [Interval(Real, 0, None, closed="left")]}


class ImageFusion(Fusion):
    """The image blocks only."""

    name = "image"


class TextFusion(Fusion):
    """The text block only, times ``text_weight``."""

    name, image, text = "text", False, True
    _parameter_constraints = TEXT_WEIGHT

    def __init__(self, text_weight=1.0):
        self.text_weight = text_weight


class ConcatFusion(Fusion):
    """The image blocks, then the text block times ``text_weight``."""

    name, text = "concat", True
    _parameter_constraints = TEXT_WEIGHT

    def __init__(self, text_weight=1.0):
        self.text_weight = text_weight
