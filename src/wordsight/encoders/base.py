"""The one shape every encoder has.

An image encoder is a ``torch.nn.Module`` whose ``forward`` takes a batch of preprocessed images
(B, 3, H, W) and returns a dict: ``embedding`` (B, D) and, for encoders with an ImageNet head,
``logits`` (B, 1000). CNN encoders also expose ``forward_features`` / ``forward_head`` and
``target_layer`` for Grad-CAM.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn

from .config import EncoderConfig
from .preprocess import preprocess


class ImageEncoder(nn.Module):
    """An image model with its preprocessing (``config``): images in, embeddings (and logits) out."""
    config: EncoderConfig

    def preprocess(self, img: Image.Image) -> np.ndarray:
        """One PIL image as the model's input array (resize, crop, normalise per ``config``)."""
        return preprocess(img, self.config)

    @torch.inference_mode()
    def encode_arrays(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Embeddings (and ImageNet logits) of a preprocessed batch, as numpy arrays."""
        out = self(torch.from_numpy(batch))
        return {k: v.float().numpy() for k, v in out.items()}


class CNNEncoder(ImageEncoder):
    """A CNN with ``forward_features`` (feature map) and ``forward_head`` (pooled / logits)."""

    def __init__(self, net: nn.Module, config: EncoderConfig):
        super().__init__()
        self.net = net
        self.config = config

    def forward_features(self, x):
        """The backbone's last feature map of a preprocessed batch ``x`` (N, 3, H, W)."""
        return self.net.forward_features(x)

    def forward_head(self, fmap, pre_logits: bool = False):
        """Pooled embedding of a feature map (``pre_logits=True``) or the ImageNet logits."""
        return self.net.forward_head(fmap, pre_logits=pre_logits)

    @property
    def target_layer(self) -> nn.Module:
        """The last convolutional block: where Grad-CAM looks."""
        return self.net.target_layer

    def forward(self, x):
        """``{'embedding': (N, dim)}``, plus ``'logits'`` (N, 1000) where the model has an ImageNet head."""
        pooled = self.forward_head(self.forward_features(x), pre_logits=True)
        out = {"embedding": pooled}
        if self.config.has_imagenet_head:
            out["logits"] = self.net.classifier_head(pooled)
        return out


class TextEncoder:
    """Texts in, L2-normalised float32 embeddings out."""

    config: EncoderConfig

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:  # pragma: no cover
        """L2-normalised embeddings (len(texts), dim) of ``texts``, ``batch_size`` at a time."""
        raise NotImplementedError
