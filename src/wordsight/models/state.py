"""What a fitted Classifier learned, as one object: persistence writes and reads exactly this."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .heads import Head
from .paired import PairedText
from .prior import PriorMix
from .prior_probe import PriorProbe


@dataclass
class FittedState:
    """``classes`` in column order; the ``head`` over fused rows of ``n_features`` columns; the
    image encoders' output ``feature_dims`` (empty when fitted on a precomputed matrix) and the
    text block's ``text_dim``; ``probs_encoder`` (the first encoder with an ImageNet head); for
    ``fusion='prior'`` the zero-shot ``prior`` pipeline and how it is mixed in (``mix``); for
    ``fusion='paired'`` or ``'late'`` the second head and how rows are routed (``paired``)."""

    classes: np.ndarray
    head: Head
    n_features: int
    feature_dims: dict[str, int] = field(default_factory=dict)
    text_dim: int | None = None
    probs_encoder: str | None = None
    prior: object | None = None  # a fitted ZeroShotPipeline
    mix: PriorMix | None = None
    probe: PriorProbe | None = None  # the few-shot learner on the prior (replaces head + mix)
    precisions: dict[str, str] = field(default_factory=dict)  # encoder -> precision its features had
    paired: PairedText | None = None  # the image's own text as a second modality (models.paired)
    _torch: dict = field(default_factory=dict, repr=False, compare=False)  # torch forms, built on first use

    def logits(self, fused: np.ndarray, prior_logits: np.ndarray | None) -> np.ndarray:
        """Log-probabilities of fused rows, the prior mixed in where the model has one."""
        if self.paired is not None:
            return self.paired.logits(fused, self.head)
        if self.probe is not None and prior_logits is not None:
            return self.probe.logits(np.asarray(fused, np.float64), prior_logits)
        z = self.head.logits(np.asarray(fused, np.float64))
        if self.mix is not None and prior_logits is not None:
            return self.mix(z, prior_logits)
        from .._util.numerics import log_softmax

        return log_softmax(z)

    def logits_torch(self, fused, prior_logits=None):
        """Scores in torch whose softmax equals :meth:`logits`'s: ``head.to_torch()``, then the
        mixing where the model has a prior (explanations, parity tests)."""
        if self.paired is not None:
            if "paired" not in self._torch:
                self._torch["paired"] = (self.head.to_torch(), self.paired.head.to_torch())
            return self.paired.torch(fused, *self._torch["paired"])
        if self.probe is not None and prior_logits is not None:
            if "probe" not in self._torch:
                self._torch["probe"] = self.probe.to_torch()
            return self._torch["probe"](fused, prior_logits)
        if "head" not in self._torch:
            self._torch["head"] = self.head.to_torch()
        z = self._torch["head"](fused)
        if self.mix is not None and prior_logits is not None:
            return self.mix.torch(z, prior_logits)
        return z  # the head's own scores (Grad-CAM differentiates a class score, not its log-probability)
