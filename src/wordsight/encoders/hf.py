"""``hf:<hub id or local folder>``: transformers vision models (ViT, ConvNeXt, DINOv2, ResNet,
the vision tower of CLIP/SigLIP). Preprocessing comes from the model's own image-processor
config, never from a guess at the call site."""
from __future__ import annotations

import dataclasses

import torch

from ._registry import register_prefix
from .base import ImageEncoder
from .config import EncoderConfig

_RESAMPLE_NAMES = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic"}
_CLS_TOKEN_MODELS = {"vit", "deit", "beit", "data2vec-vision", "vit_msn", "vit_mae"}


def _size(value, default: int) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        for key in ("shortest_edge", "height", "width"):
            if value.get(key):
                return int(value[key])
    return default


def hf_config(ident: str, prefix: str = "hf") -> EncoderConfig:
    from transformers import AutoImageProcessor

    proc = AutoImageProcessor.from_pretrained(ident).to_dict()
    size = proc.get("size") or {}
    exact = isinstance(size, dict) and bool(size.get("height")) and not size.get("shortest_edge")
    resize = _size(size, 224)
    crop = proc.get("crop_size") if proc.get("do_center_crop") else None
    input_size = _size(crop, resize)
    resample = proc.get("resample", 3)
    return EncoderConfig(
        name=f"{prefix}:{ident}", modality="image", dim=0, licence="see the model card",
        weight_source=f"Hugging Face transformers: {ident}", input_size=input_size,
        resize_size=max(resize, input_size), resize_mode="exact" if exact else "shorter",
        interpolation=_RESAMPLE_NAMES.get(getattr(resample, "value", resample), "bicubic"),
        mean=tuple(proc.get("image_mean") or (0.5, 0.5, 0.5)),
        std=tuple(proc.get("image_std") or (0.5, 0.5, 0.5)),
    )


class HFImageEncoder(ImageEncoder):
    def __init__(self, model, config: EncoderConfig):
        super().__init__()
        self.model = model.eval()
        self.model_type = model.config.model_type
        with torch.inference_mode():
            dummy = torch.zeros(1, 3, config.input_size, config.input_size)
            dim = self._embed(dummy).shape[-1]
        self.config = dataclasses.replace(config, dim=int(dim))

    def _embed(self, x):
        if hasattr(self.model, "get_image_features"):
            out = self.model.get_image_features(pixel_values=x)
            return out if torch.is_tensor(out) else out.pooler_output
        out = self.model(pixel_values=x)
        if self.model_type in _CLS_TOKEN_MODELS or getattr(out, "pooler_output", None) is None:
            hidden = out.last_hidden_state
            return hidden[:, 0] if hidden.dim() == 3 else hidden.mean((2, 3))
        return out.pooler_output.flatten(1)

    def forward(self, x):
        return {"embedding": self._embed(x)}


@register_prefix("hf", hf_config)
def hf_image_model(ident: str):
    from transformers import AutoModel

    return HFImageEncoder(AutoModel.from_pretrained(ident), hf_config(ident))
