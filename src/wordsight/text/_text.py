"""Text embeddings computed once: per process and on disk, keyed by (text model, exact texts).

The concept bank (1000 descriptions) and the class texts of a zero-shot classifier are embedded
the first time they are needed and read back afterwards, so that neither prediction nor a second
run pays for the text encoder again.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .._util.caches import register_store
from .._util.numerics import l2_normalize

# Bounds on what embedded texts may hold, whoever asks (a server gets class lists from clients).
# The concept bank (1000 texts x 384 floats) is 1.5 MB; a zero-shot request of 1000 classes with
# descriptions a few MB. Least recently used entries go first.
MEMORY_CACHE_BYTES = 256 << 20
DEFAULT_DISK_CACHE_MB = 512
CHUNK = 256  # texts per encoder call when a deadline is set (MiniLM on 2 cores: ~0.5-1 s per chunk)

_memory: OrderedDict[str, np.ndarray] = register_store("text-embeddings", OrderedDict())
_lock = threading.Lock()
_deadline = threading.local()


class TextDeadlineExceeded(TimeoutError):
    """The texts were not embedded before the caller's deadline; the work stopped there."""


@contextlib.contextmanager
def deadline(seconds: float | None):
    """Stop :func:`embed_texts` in this thread once ``seconds`` have passed (checked between chunks
    of :data:`CHUNK` texts), so that a request that timed out does not keep the model busy."""
    old = getattr(_deadline, "at", None)
    _deadline.at = None if seconds is None else time.monotonic() + seconds
    try:
        yield
    finally:
        _deadline.at = old


def _remember(key: str, arr: np.ndarray) -> None:
    with _lock:
        _memory[key] = arr
        _memory.move_to_end(key)
        total = sum(a.nbytes for a in _memory.values())
        while total > MEMORY_CACHE_BYTES and len(_memory) > 1:
            total -= _memory.popitem(last=False)[1].nbytes


def disk_cache_bytes() -> int:
    """``$WORDSIGHT_TEXT_CACHE_MB`` (default 512) in bytes."""
    try:
        return max(0, int(float(os.environ.get("WORDSIGHT_TEXT_CACHE_MB", DEFAULT_DISK_CACHE_MB)) * (1 << 20)))
    except ValueError:
        return DEFAULT_DISK_CACHE_MB << 20


def _prune_disk(root: Path) -> None:
    """Delete the least recently used ``.npy`` files until the folder holds at most
    :func:`disk_cache_bytes`."""
    limit = disk_cache_bytes()
    try:
        entries = [(e.stat().st_mtime, e.stat().st_size, e.path) for e in os.scandir(root)
                   if e.name.endswith(".npy") and e.is_file(follow_symlinks=False)]
    except OSError:
        return
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries):
        if total <= limit:
            break
        try:
            os.remove(path)
            total -= size
        except OSError:
            pass


def _encode(encoder, texts: list[str]) -> np.ndarray:
    at = getattr(_deadline, "at", None)
    if at is None or len(texts) <= CHUNK:
        if at is not None and time.monotonic() > at:
            raise TextDeadlineExceeded(f"embedding {len(texts)} texts: deadline passed")
        return np.asarray(encoder.encode(texts), dtype=np.float32)
    parts = []
    for i in range(0, len(texts), CHUNK):
        if time.monotonic() > at:
            raise TextDeadlineExceeded(f"embedding {len(texts)} texts: deadline passed after {i}")
        parts.append(np.asarray(encoder.encode(texts[i : i + CHUNK]), dtype=np.float32))
    return np.concatenate(parts)


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
    (``$WORDSIGHT_CACHE``), at most ``$WORDSIGHT_TEXT_CACHE_MB`` (default 512) MiB, least recently
    used files deleted first; the memory cache holds at most 256 MiB. A model given as an object
    (not a name) is cached in memory only when it has a config name, never on disk under a made-up
    name. Inside :func:`deadline` the texts are embedded in chunks and the work stops at the deadline.
    """
    texts = [str(t) for t in texts]
    named = isinstance(text_model, str) or getattr(getattr(text_model, "config", None), "name", None)
    key = texts_key(text_model, texts)
    if cache and named:
        with _lock:
            if key in _memory:
                _memory.move_to_end(key)
                return _memory[key]
        path = cache_root() / f"{key}.npy"
        if path.is_file():
            try:
                arr = np.load(path, allow_pickle=False)
                if arr.ndim == 2 and arr.shape[0] == len(texts) and arr.dtype == np.float32:
                    _remember(key, arr)
                    os.utime(path)  # recently used: pruned last
                    return arr
            except (OSError, ValueError):
                pass  # a broken cache file is recomputed and replaced
    vecs = _encode(text_encoder(text_model), texts)
    vecs = l2_normalize(vecs)
    if cache and named:
        _remember(key, vecs)
        try:
            root = cache_root()
            root.mkdir(parents=True, exist_ok=True)
            tmp = root / f"{key}.{os.getpid()}.tmp.npy"
            np.save(tmp, vecs, allow_pickle=False)
            os.replace(tmp, root / f"{key}.npy")
            _prune_disk(root)
        except OSError:
            pass  # a read-only cache folder only costs speed
    return vecs


def display_name(name: str) -> str:
    """A class name as a phrase: ``T-shirt/top`` -> ``T-shirt or top``, ``ankle_boot`` -> ``ankle boot``."""
    return " ".join(str(name).replace("/", " or ").replace("_", " ").split())
