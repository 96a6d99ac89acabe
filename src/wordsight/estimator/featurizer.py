"""How a :class:`~.classifier.Classifier`'s inputs become feature blocks and fused rows.

Per-encoder embeddings and ImageNet probabilities come from the shared feature cache
(:mod:`.blocks`); the ConSE semantic vectors and the images' own texts from the text model; the
fusion (:mod:`.fusion`) turns them into the row its head sees. Mixed into the Classifier, which
holds the parameters these read (encoders, text_model, augment_params, small_input, precision,
cache, batch_size, quiet).
"""
from __future__ import annotations

import numpy as np

from .augment import Augment
from .feature_blocks import FeatureBlocks, add_views, extract_blocks, from_feature_set


class Featurizer:
    """``extract`` (blocks), ``fuse`` (rows), the text pieces and the prior's reading."""

    @property
    def encoder_names(self) -> list[str]:
        """The image encoders' names as a list (``encoders`` may be one string)."""
        return [self.encoders] if isinstance(self.encoders, str) else list(self.encoders)

    def _options(self) -> dict:
        return {"cache": self.cache, "batch_size": self.batch_size, "quiet": self.quiet}

    def extract(self, X, views: int = 0) -> FeatureBlocks:
        """Per-encoder embeddings and ImageNet probabilities of ``X`` (not fused), with
        ``views`` augmented views of each image. Reusable across fusions and heads."""
        from ..features import FeatureSet
        from ..io.sources import open_source
        from .precision import for_features

        if isinstance(X, FeatureBlocks):
            if views and len(X.views) < views:
                raise ValueError(f"{views} augmented views needed but the features hold {len(X.views)}")
            return X
        if isinstance(X, FeatureSet):
            if views:
                raise ValueError("augmented views need images, not a FeatureSet")
            return from_feature_set(X, self.encoder_names)
        source = open_source(X)
        recorded = self.state_.precisions if hasattr(self, "state_") else None
        opts = dict(self._options(), small_input=self.small_input,
                    precision=for_features(self.encoder_names, self.precision, recorded))
        blocks = extract_blocks(source, self.encoder_names, **opts)
        return add_views(blocks, source, views, Augment.from_dict(self.augment_params), **opts) if views else blocks

    def concept_bank(self):
        """The concept bank (ImageNet concepts embedded by ``text_model``) behind the words."""
        from ..text.concepts import default_bank

        return default_bank(self.text_model)

    def semantic_vectors(self, blocks: FeatureBlocks) -> np.ndarray | None:
        """The ConSE semantic vectors of ``blocks`` (None without ImageNet probabilities)."""
        if blocks.probs is None:
            return None
        from ..text import semantic_vectors

        return semantic_vectors(blocks.probs, bank=self.concept_bank())

    def fuse(self, blocks: FeatureBlocks) -> np.ndarray:
        """The fused rows the head sees."""
        fusion = self.fusion_
        semantic = self.semantic_vectors(blocks) if fusion.text else None
        if fusion.text and semantic is None:
            raise ValueError(f"fusion {fusion.name!r} needs ImageNet probabilities: one of the encoders "
                             f"{self.encoder_names} must have an ImageNet head")
        paired = self.paired_text_vectors(blocks) if fusion.paired else None
        return fusion.fuse(blocks.embeddings, semantic, len(blocks), paired)

    def paired_text_vectors(self, blocks: FeatureBlocks) -> np.ndarray:
        """The images' own texts (``Sample.text``) embedded by ``text_model``: (N, D), a NaN row
        for an image without text (see :mod:`.paired`)."""
        from .paired_text import paired_text_vectors

        paired = self.state_.paired if hasattr(self, "state_") else None
        return paired_text_vectors([getattr(s, "text", None) for s in blocks.samples], self.text_model,
                                   paired and paired.dim, cache=self.cache is not False)

    def prior_features(self, blocks: FeatureBlocks) -> dict[str, np.ndarray]:
        """The fitted prior's reading of ``blocks``'s images (kept in ``blocks``)."""
        return self.fusion_.prior_features(self.prior_, blocks)

    def prior_log_proba(self, blocks: FeatureBlocks) -> np.ndarray:
        """The language prior's zero-shot log-probabilities for ``blocks`` (``fusion='prior'``)."""
        return self.fusion_.prior_logits(self, blocks)

    def model_input(self, data: bytes, encoder: str | None = None) -> np.ndarray:
        """The preprocessed (3, H, W) array that ``encoder`` (default: the first) sees for the
        image bytes ``data``, exactly as feature extraction makes it (tiny images at the reduced
        input size)."""
        from ..features.engines.batch import EmbedBatch

        fn = EmbedBatch(encoder or self.encoder_names[0], engine="torch", small_input=self.small_input)
        x, err = fn.decode_for_model(data)
        if x is None:
            raise ValueError(err)
        return x
