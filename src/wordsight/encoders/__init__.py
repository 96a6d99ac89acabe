"""Encoder registry: ``list_models``, ``get_config``, ``load_model``."""
from __future__ import annotations

from functools import lru_cache

from .._util.caches import register_function
from . import caption, finetuned, hf, image, joint, pixels, text, tilebag, tiles  # noqa: F401  (registration side effects: clip:, caption:, ft:, tiles:, tilebag: prefixes)
from ._registry import create, get_config, list_models, list_prefixes, register_model, register_prefix
from .base import CNNEncoder, ImageEncoder, TextEncoder
from .config import EncoderConfig, MissingWeightsError

DEFAULT_IMAGE_MODEL = "efficientnet-lite0"
DEFAULT_TEXT_MODEL = "minilm"


@lru_cache(maxsize=8)
def load_model(name: str):
    """Build the model that ``name`` names (cached per process: load once, reuse)."""
    return create(name)


register_function("models", load_model)


__all__ = [
    "CNNEncoder", "DEFAULT_IMAGE_MODEL", "DEFAULT_TEXT_MODEL", "EncoderConfig", "ImageEncoder",
    "MissingWeightsError", "TextEncoder", "create", "get_config", "list_models", "list_prefixes",
    "load_model", "register_model", "register_prefix",
]
