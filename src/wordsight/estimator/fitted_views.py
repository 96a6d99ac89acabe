"""Read-only views of a fitted :class:`~.classifier.Classifier`: what it learned (head, prior,
mixing, feature widths), its words for images, its linear form and how an image becomes logits
(for explanations and export). Mixed into the Classifier."""
from __future__ import annotations

import numpy as np

from .feature_blocks import FeatureBlocks
from .heads import LinearHead


def _py(v):
    return v.item() if isinstance(v, np.generic) else v


class FittedViews:
    """Views of ``state_`` and of the fitted parts; nothing here changes the model."""

    @property
    def class_names(self) -> list[str]:
        """``classes_`` as a plain list of str (JSON-friendly)."""
        return [str(_py(c)) for c in self.classes_]

    @property
    def head_(self):
        """The fitted head (numpy logits, torch and ONNX forms, state)."""
        return self.state_.head

    @property
    def prior_(self):
        """The zero-shot pipeline of a ``fusion='prior'`` model (None otherwise)."""
        return self.state_.prior

    @property
    def prior_mix_(self):
        """How the prior is combined with the head (weight, temperatures), or None without a prior."""
        return self.state_.mix

    @property
    def feature_dims_(self) -> dict:
        """Embedding width of each image encoder, as fitted."""
        return self.state_.feature_dims

    @property
    def probs_encoder_(self):
        """The encoder whose ImageNet probabilities feed the text block and the prior (None if none has a head)."""
        return self.state_.probs_encoder

    def describe(self, X) -> list[str | None]:
        """Per-image descriptions in words, one per input (``None`` for an image that could not be
        read): for a fitted model the classes that match the image best, then the ImageNet
        concepts it resembles (:func:`~wordsight.text.phrasing.lead_with_classes`)."""
        if not hasattr(self, "state_"):
            return self.describe_blocks(self.extract(X))
        F = self.featurize(X)
        out = [None] * F.n_inputs
        for r, t in zip(F.rows, self.describe_blocks(F.blocks, self.proba_featurized(F))):
            out[r] = t
        return out

    def describe_blocks(self, blocks: FeatureBlocks, proba=None) -> list[str | None]:
        """Descriptions of the images of ``blocks``, in order; with ``proba`` (their rows of
        :meth:`predict_proba`) they lead with the classes that match best."""
        from .image_descriptions import describe_images

        return describe_images(self, blocks, proba)

    # ------------------------------------------------------------------ introspection
    def linear_head(self) -> tuple[np.ndarray, np.ndarray]:
        """(W (n_classes, n_features), b (n_classes,)) with head logits = fused @ W.T + b, for the
        linear heads (logistic, svm); the standardisation is folded in."""
        self._check_fitted()
        if not isinstance(self.head_, LinearHead):
            raise ValueError(f"head {self.head_name!r} is not linear: linear_head() needs 'logistic' or 'svm'")
        return self.head_.linear()

    def pipeline_spec(self) -> dict:
        """How an image becomes logits, for reproducing the path elsewhere (explanations, export)."""
        self._check_fitted()
        s = self.state_
        mix = s.mix
        return {
            "encoders": self.encoder_names,
            "fusion": self.fusion_name,
            "blocks": self.fusion_.layout(s.feature_dims, s.text_dim, s.paired and s.paired.dim) if s.feature_dims
            else [{"name": "precomputed", "start": 0, "stop": s.n_features}],
            "text_weight": float(self.fusion_.text_weight),
            "head": self.head_name,
            "prior": None if mix is None else {
                "formula": "log_softmax(head_temperature * head) + weight * log_softmax(temperature * prior_log_proba)",
                "weight": mix.weight, "temperature": mix.temperature, "head_temperature": mix.head_temperature,
                "encoder": s.prior.encoder, "view": s.prior.view_, "ways": list(s.prior.ways_)},
            "classes": [_py(c) for c in self.classes_],
        }
