"""What a fitted Classifier learned, as one object: persistence writes and reads exactly this."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .conformal import Calibration
from .fusion import Fusion
from .heads import Head


@dataclass
class FittedState:
    """``classes`` in column order; the ``head`` over fused rows of ``n_features`` columns; the
    image encoders' output ``feature_dims`` (empty when fitted on a precomputed matrix) and the
    text block's ``text_dim``; ``probs_encoder`` (the first encoder with an ImageNet head); the
    fitted ``fusion``, which turns the head's scores into log-probabilities and holds what it
    learned besides (``prior`` and ``mix`` or ``probe`` for ``prior``; ``paired`` for ``paired``
    and ``late``)."""

    classes: np.ndarray
    head: Head
    n_features: int
    feature_dims: dict[str, int] = field(default_factory=dict)
    text_dim: int | None = None
    probs_encoder: str | None = None
    fusion: Fusion | None = None
    precisions: dict[str, str] = field(default_factory=dict)  # encoder -> precision its features had
    calibration: Calibration | None = None  # out-of-fold scores for sets and "unknown" (.conformal)
    task: object | None = None  # the fitted Task (what it decides with: a multi-label model's thresholds)
    _torch: dict = field(default_factory=dict, repr=False, compare=False)  # torch forms, built on first use

    # ------------------------------------------------------------------ what the fusion learned, read-only
    @property
    def prior(self):
        """The fitted zero-shot pipeline of a ``prior`` model (None otherwise)."""
        return getattr(self.fusion, "prior_", None)

    @property
    def mix(self):
        """How the prior is mixed into the head (:class:`~.prior.PriorMix`; None without a prior)."""
        return getattr(self.fusion, "mix_", None)

    @property
    def probe(self):
        """The few-shot learner on the prior, when it replaces head + mix (None otherwise)."""
        return getattr(self.fusion, "probe_", None)

    @property
    def paired(self):
        """The second head and row split of a ``paired`` / ``late`` model (None otherwise)."""
        return getattr(self.fusion, "paired_", None)

    # ------------------------------------------------------------------ scores
    def logits(self, fused: np.ndarray, prior_logits: np.ndarray | None) -> np.ndarray:
        """Log-probabilities of fused rows, the prior mixed in where the model has one."""
        return self.fusion.logits(self.head, fused, prior_logits)

    def logits_torch(self, fused, prior_logits=None):
        """Scores in torch whose softmax equals :meth:`logits`'s (explanations, parity tests)."""
        return self.fusion.logits_torch(self.head, fused, prior_logits, self.torch_form)

    def torch_form(self, part):
        """``part.to_torch()`` (a head or the prior probe), built once."""
        if id(part) not in self._torch:
            self._torch[id(part)] = part.to_torch()
        return self._torch[id(part)]
