"""``caption:<hub id or folder>``: image-to-text models (BLIP, GIT, ViT-GPT2, any
VisionEncoderDecoder) through transformers. The caption is the image's description; its
embedding by the text encoder (``minilm``) puts the image in the text space.

``forward`` returns ``embedding`` (the caption's text embedding) and ``caption_ids`` (the
generated token ids as floats, padded with -1), so captions are cached with the other features
and :meth:`CaptionEncoder.decode_captions` turns them back into text.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from ._registry import register_prefix
from .base import ImageEncoder
from .config import EncoderConfig
from .hf import hf_config

DEFAULT_CAPTION_TEXT_MODEL = "minilm"


def caption_config(ident: str) -> EncoderConfig:
    cfg = hf_config(ident, prefix="caption")
    return dataclasses.replace(
        cfg, modality="caption", weight_source=f"Hugging Face transformers (image-to-text): {ident}"
    )


def _model_type(ident: str) -> str | None:
    p = Path(ident) / "config.json"
    if p.exists():
        try:
            return json.loads(p.read_text()).get("model_type")
        except (OSError, json.JSONDecodeError):
            return None
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(ident).model_type


def _load_model(ident: str):
    import transformers

    kind = _model_type(ident)
    if kind == "vision-encoder-decoder":
        return transformers.VisionEncoderDecoderModel.from_pretrained(ident)
    errors = []
    for auto in ("AutoModelForImageTextToText", "AutoModelForVision2Seq", "AutoModelForCausalLM"):
        cls = getattr(transformers, auto, None)
        if cls is None:
            continue
        try:
            return cls.from_pretrained(ident)
        except (ValueError, KeyError) as e:  # this auto class does not know the model type
            errors.append(f"{auto}: {str(e).splitlines()[0][:120]}")
    raise ValueError(f"caption:{ident}: {kind!r} is not an image-to-text model that transformers can "
                     f"generate captions with ({'; '.join(errors)})")


class CaptionEncoder(ImageEncoder):
    generates_text = True  # engines run it with torch (generation does not export to one ONNX graph)

    def __init__(self, model, tokenizer, config: EncoderConfig, text_model: str = DEFAULT_CAPTION_TEXT_MODEL,
                 max_new_tokens: int = 30, num_beams: int = 1):
        super().__init__()
        from . import load_model

        self.model = model.eval()
        self.tokenizer = tokenizer
        self.text_model = text_model
        self.max_new_tokens, self.num_beams = max_new_tokens, num_beams
        self._text = load_model(text_model)
        self.config = dataclasses.replace(config, dim=int(self._text.config.dim))

    @torch.inference_mode()
    def generate_ids(self, x: torch.Tensor) -> torch.Tensor:
        kwargs = dict(max_new_tokens=self.max_new_tokens, num_beams=self.num_beams, do_sample=False)
        gen_cfg = getattr(self.model, "generation_config", None)
        if (
            getattr(self.model.config, "is_encoder_decoder", False)
            and gen_cfg is not None
            and gen_cfg.decoder_start_token_id is None
            and getattr(self.model.config, "decoder_start_token_id", None) is None
        ):
            start = self.tokenizer.cls_token_id if self.tokenizer.cls_token_id is not None else self.tokenizer.bos_token_id
            kwargs["decoder_start_token_id"] = start
        if getattr(gen_cfg, "pad_token_id", None) is None and self.tokenizer.pad_token_id is not None:
            kwargs["pad_token_id"] = self.tokenizer.pad_token_id
        return self.model.generate(pixel_values=x, **kwargs)

    def captions_from_ids(self, ids) -> list[str]:
        return [" ".join(t.split()) for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]

    def decode_captions(self, caption_ids) -> list[str]:
        """Captions back from the cached ``caption_ids`` array (float, -1 padded)."""
        arr = np.asarray(caption_ids)
        rows = [[int(v) for v in row if v >= 0] for row in arr.reshape(len(arr), -1)]
        return self.captions_from_ids(rows)

    def caption(self, images) -> list[str]:
        """Captions of PIL images."""
        x = torch.from_numpy(np.stack([self.preprocess(im.convert("RGB")) for im in images]))
        return self.captions_from_ids(self.generate_ids(x))

    def forward(self, x):
        ids = self.generate_ids(x)
        texts = self.captions_from_ids(ids)
        emb = torch.from_numpy(self._text.encode(texts))
        width = self.max_new_tokens + 8  # fixed width: cached rows from different batches stack
        padded = torch.full((len(ids), width), -1.0)
        n = min(width, ids.shape[1])
        padded[:, :n] = ids[:, :n].float()
        if self.tokenizer.pad_token_id is not None:  # padding inside a batch is not part of the caption
            padded[:, :n][ids[:, :n] == self.tokenizer.pad_token_id] = -1.0
        return {"embedding": emb, "caption_ids": padded}


@register_prefix("caption", caption_config)
def caption_model(ident: str, text_model: str = DEFAULT_CAPTION_TEXT_MODEL):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(ident)
    except OSError as e:
        raise FileNotFoundError(f"caption:{ident}: cannot load the tokenizer: {e}") from None
    return CaptionEncoder(_load_model(ident), tokenizer, caption_config(ident), text_model=text_model)
