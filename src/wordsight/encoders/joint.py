"""``clip:<hub id or folder>``: joint image-text models (CLIP, SigLIP, ...) through transformers.

The image embedding and the text embedding live in one space, so an image is already "in words":
zero-shot classification compares it with class texts embedded by the same model's text tower.
The encoder is an :class:`ImageEncoder` (``forward`` -> ``{"embedding"}``, L2-normalised) that
is also a text encoder (``encode(texts)``), and carries the model's ``logit_scale``.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ._registry import register_prefix
from .base import ImageEncoder
from .config import EncoderConfig
from .hf import hf_config

# SigLIP was trained on texts padded to a fixed length; padding differently changes its vectors.
_FIXED_LENGTH_TEXT = {"siglip": 64, "siglip2": 64}


def clip_config(ident: str) -> EncoderConfig:
    cfg = hf_config(ident, prefix="clip")
    return dataclasses.replace(
        cfg, modality="joint", weight_source=f"Hugging Face transformers (joint image-text): {ident}"
    )


def _features(out) -> torch.Tensor:
    """``get_*_features`` return a tensor in older transformers and an output object in newer."""
    if torch.is_tensor(out):
        return out
    for attr in ("image_embeds", "text_embeds", "pooler_output"):
        value = getattr(out, attr, None)
        if value is not None:
            return value
    raise TypeError(f"unexpected feature output {type(out).__name__}")


class JointEncoder(ImageEncoder):
    def __init__(self, model, tokenizer, config: EncoderConfig):
        super().__init__()
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.model_type = model.config.model_type
        with torch.inference_mode():
            dim = self._image(torch.zeros(1, 3, config.input_size, config.input_size)).shape[-1]
        self.config = dataclasses.replace(config, dim=int(dim))

    def _image(self, x):
        return torch.nn.functional.normalize(_features(self.model.get_image_features(pixel_values=x)).float(), dim=-1)

    def forward(self, x):
        return {"embedding": self._image(x)}

    @property
    def logit_scale(self) -> float:
        scale = getattr(self.model, "logit_scale", None)
        return float(scale.detach().exp()) if scale is not None else 100.0

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.config.dim), np.float32)
        fixed = _FIXED_LENGTH_TEXT.get(self.model_type)
        limit = getattr(getattr(self.model.config, "text_config", None), "max_position_embeddings", None) or 77
        parts = []
        for i in range(0, len(texts), batch_size):
            if fixed:
                enc = self.tokenizer(texts[i : i + batch_size], padding="max_length", max_length=min(fixed, limit),
                                     truncation=True, return_tensors="pt")
            else:
                enc = self.tokenizer(texts[i : i + batch_size], padding=True, truncation=True,
                                     max_length=limit, return_tensors="pt")
            feats = _features(self.model.get_text_features(**{k: v for k, v in enc.items()
                                                              if k in ("input_ids", "attention_mask")}))
            parts.append(torch.nn.functional.normalize(feats.float(), dim=-1).numpy())
        return np.concatenate(parts).astype(np.float32)


@register_prefix("clip", clip_config)
def clip_model(ident: str):
    from transformers import AutoModel, AutoTokenizer

    try:
        model = AutoModel.from_pretrained(ident)
        tokenizer = AutoTokenizer.from_pretrained(ident)
    except OSError as e:
        raise FileNotFoundError(f"clip:{ident}: cannot load a joint image-text model: {e}") from None
    if not hasattr(model, "get_image_features") or not hasattr(model, "get_text_features"):
        raise ValueError(f"clip:{ident}: {type(model).__name__} is not a joint image-text model "
                         "(it lacks get_image_features / get_text_features); use hf: for image-only models")
    return JointEncoder(model, tokenizer, clip_config(ident))
