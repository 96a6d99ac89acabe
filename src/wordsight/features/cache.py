"""Content-addressed feature cache: one SQLite file, crash-safe.

A key is (hash of the file bytes, model fingerprint, view); a value is a dict of named arrays
stored as safetensors bytes (never pickle). Every batch is one transaction, so a run killed at any
moment leaves a consistent cache holding every batch that finished, and the re-run computes only
what is missing. Several processes (Ray actors, server workers) may share one cache.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from pathlib import Path

import numpy as np
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save


def default_cache_dir() -> Path:
    env = os.environ.get("WORDSIGHT_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "wordsight"


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def feature_key(content: str, fingerprint: str, view: str = "") -> str:
    return f"{content}|{fingerprint}|{view}"


class FeatureCache:
    """Persistent cache under ``root`` (default ``$WORDSIGHT_CACHE`` or ``~/.cache/wordsight``)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / "features.sqlite"
        self._local = threading.local()
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS features (key TEXT PRIMARY KEY, data BLOB NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=60)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def get_many(self, keys: list[str]) -> dict[str, dict[str, np.ndarray]]:
        found: dict[str, dict[str, np.ndarray]] = {}
        db = self._connect()
        for i in range(0, len(keys), 500):
            part = keys[i : i + 500]
            marks = ",".join("?" * len(part))
            for key, blob in db.execute(f"SELECT key, data FROM features WHERE key IN ({marks})", part):
                found[key] = st_load(blob)
        return found

    def put_many(self, items: dict[str, dict[str, np.ndarray]]) -> None:
        if not items:
            return
        rows = [(k, st_save({n: np.ascontiguousarray(a) for n, a in v.items()})) for k, v in items.items()]
        with self._connect() as db:  # one transaction per batch
            db.executemany("INSERT OR REPLACE INTO features (key, data) VALUES (?, ?)", rows)

    def __len__(self) -> int:
        return self._connect().execute("SELECT COUNT(*) FROM features").fetchone()[0]


class MemoryCache(FeatureCache):
    """A cache that lives only for this process (``--no-cache``)."""

    def __init__(self):
        self.root = None
        self._data: dict[str, dict[str, np.ndarray]] = {}

    def get_many(self, keys):
        return {k: self._data[k] for k in keys if k in self._data}

    def put_many(self, items):
        self._data.update(items)

    def __len__(self):
        return len(self._data)


def open_cache(cache) -> FeatureCache:
    """``None`` -> the default on-disk cache; ``False`` -> no persistence; a path or a cache."""
    if isinstance(cache, FeatureCache):
        return cache
    if cache is False:
        return MemoryCache()
    return FeatureCache(cache)
