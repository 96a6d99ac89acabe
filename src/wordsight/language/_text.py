"""Text embeddings computed once: per process and on disk, keyed by (text model, exact texts).

The concept bank (1000 descriptions) and the class texts of a zero-shot classifier are embedded
the first time they are needed and read back afterwards, so that neither prediction nor a second
run pays for the text encoder again.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np

_memory: dict[str, np.ndarray] = {}
_lock = threading.Lock()


def text_encoder(text_model):
    """A text encoder: a registry name (``minilm``, ``st:...``, ``clip:...``) or an object with
    ``encode(list[str]) -> (N, D)``."""
    if isinstance(text_model, str):
        from ..encoders import load_model

        model = load_model(text_model)
        if not hasattr(model, "encode"):
            raise ValueError(f"{text_model!r} is not a text model (it has no encode(texts)); use a text "
                             "encoder such as 'minilm' or 'st:<folder>', or a joint model 'clip:<id>'")
        return model
    if not hasattr(text_model, "encode"):
        raise TypeError(f"text_model must be a model name or have encode(texts), not {type(text_model).__name__}")
    return text_model


def text_model_name(text_model) -> str:
    if isinstance(text_model, str):
        return text_model
    cfg = getattr(text_model, "config", None)
    return getattr(cfg, "name", None) or type(text_model).__name__


def cache_root() -> Path:
    from ..features.cache import default_cache_dir

    return default_cache_dir() / "text-embeddings"


def texts_key(text_model, texts: list[str]) -> str:
    blob = json.dumps({"model": text_model_name(text_model), "texts": list(texts)}, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def embed_texts(texts: list[str], text_model="minilm", cache: bool = True) -> np.ndarray:
    """(N, D) float32 L2-normalised embeddings of ``texts``, from the cache when they are there.

    The on-disk cache is a ``.npy`` file per (model, text list) under the wordsight cache folder
    (``$WORDSIGHT_CACHE``); a model given as an object (not a name) is cached in memory only when it
    has a config name, never on disk under a made-up name.
    """
    texts = [str(t) for t in texts]
    named = isinstance(text_model, str) or getattr(getattr(text_model, "config", None), "name", None)
    key = texts_key(text_model, texts)
    if cache and named:
        with _lock:
            if key in _memory:
                return _memory[key]
        path = cache_root() / f"{key}.npy"
        if path.exists():
            try:
                arr = np.load(path, allow_pickle=False)
                if arr.shape[0] == len(texts):
                    with _lock:
                        _memory[key] = arr
                    return arr
            except (OSError, ValueError):
                pass  # a broken cache file is recomputed and replaced
    vecs = np.asarray(text_encoder(text_model).encode(texts), dtype=np.float32)
    vecs = normalize_rows(vecs)
    if cache and named:
        with _lock:
            _memory[key] = vecs
        try:
            root = cache_root()
            root.mkdir(parents=True, exist_ok=True)
            tmp = root / f"{key}.{os.getpid()}.tmp.npy"
            np.save(tmp, vecs, allow_pickle=False)
            os.replace(tmp, root / f"{key}.npy")
        except OSError:
            pass  # a read-only cache folder only costs speed
    return vecs


def normalize_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def display_name(name: str) -> str:
    """A class name as a phrase: ``T-shirt/top`` -> ``T-shirt or top``, ``ankle_boot`` -> ``ankle boot``."""
    return " ".join(str(name).replace("/", " or ").replace("_", " ").split())
