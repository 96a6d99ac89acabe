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
import time
import warnings
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save


def default_cache_dir() -> Path:
    """``$WORDSIGHT_CACHE``, else ``$XDG_CACHE_HOME/wordsight`` (``~/.cache/wordsight``)."""
    env = os.environ.get("WORDSIGHT_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "wordsight"


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def feature_key(content: str, fingerprint: str, view: str = "") -> str:
    return f"{content}|{fingerprint}|{view}"


class CacheWarning(UserWarning):
    """The feature cache was damaged and has been set aside (the run goes on without its old
    entries), or it cannot be written (the run goes on without it)."""


class FeatureCache:
    """Persistent cache under ``root`` (default ``$WORDSIGHT_CACHE`` or ``~/.cache/wordsight``).

    A damaged database (truncated, overwritten, not SQLite: SQLite's own error codes say so) is
    renamed aside to ``features.sqlite.damaged-<time>`` with a :class:`CacheWarning` naming it, and
    a fresh one is started: the run recomputes instead of failing. A cache that cannot be written
    (a read-only mount, a full disk) is not damaged: it is left untouched and the run goes on
    uncached, with a :class:`CacheWarning` that says so. A single entry that does not decode, or whose
    arrays are not what the caller expects, is treated as missing, deleted and recomputed.
    """

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()
        if self.root.exists() and not self.root.is_dir():
            raise ValueError(f"{self.root}: the cache folder is a file, not a folder (--cache-dir names "
                                     "a folder; it is created when missing)")
        self.path = self.root / "features.sqlite"
        self._local = threading.local()
        self._memory: MemoryCache | None = None  # set when the cache cannot be written: this run goes uncached
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # a read-only or full disk, a folder of another user
            self._run_uncached(f"cannot create {self.root}: {e.strerror or e}", damaged=False)
        self._guarded(self._create, lambda memory: None)

    def _create(self, db: sqlite3.Connection) -> None:
        with db:  # no integrity check here: it reads the whole file; damage shows when a page is read
            db.execute("CREATE TABLE IF NOT EXISTS features (key TEXT PRIMARY KEY, data BLOB NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=60)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def _guarded(self, fn, uncached):
        """``fn(db)``; a damaged database is quarantined and ``fn`` runs once more on a fresh one.
        A cache that cannot be written (read-only, full disk) is left as it is: this run goes on
        uncached (``uncached(memory)`` on this process's :class:`MemoryCache`), with one warning."""
        if self._memory is not None:
            return uncached(self._memory)
        try:
            return fn(self._connect())
        except sqlite3.DatabaseError as e:
            if isinstance(e, sqlite3.OperationalError) and "locked" in str(e):
                raise
            if not _damaged(e) or not self._quarantine(e):
                self._run_uncached(str(e), _damaged(e))
                return uncached(self._memory)
            db = self._connect()
            self._create(db)  # the fresh database needs its table before fn reads or writes it
            return fn(db)

    def _close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            try:
                db.close()
            except sqlite3.Error:
                pass
            self._local.db = None

    def _quarantine(self, err: Exception) -> bool:
        """Move the damaged database aside; False (nothing moved) where the folder is not writable."""
        self._close()
        aside = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        try:
            self.path.replace(aside)
        except OSError:
            return False
        for suffix in ("-wal", "-shm"):
            src = Path(str(self.path) + suffix)
            try:
                if src.exists():
                    src.replace(Path(str(aside) + suffix))
            except OSError:
                pass
        warnings.warn(f"{self.path}: damaged feature cache ({err}); moved aside to {aside.name} and started "
                      "afresh (features are recomputed)", CacheWarning, stacklevel=4)
        return True

    def _run_uncached(self, reason: str, damaged: bool) -> None:
        self._close()
        self._memory = MemoryCache()
        state = "damaged and cannot be moved aside" if damaged else "cannot be written"
        warnings.warn(f"{self.path}: the feature cache {state} ({reason}); running without it (features are "
                      "computed, not stored)", CacheWarning, stacklevel=4)

    def get_many(self, keys: list[str], expect: dict[str, int] | None = None) -> dict[str, dict[str, np.ndarray]]:
        """Entries found for ``keys``. ``expect``: {array name: length} every entry must hold
        (finite float32 vectors); an entry that does not decode or fit is dropped and deleted."""
        def read(db):
            rows = []
            for i in range(0, len(keys), 500):
                part = keys[i : i + 500]
                marks = ",".join("?" * len(part))
                rows += db.execute(f"SELECT key, data FROM features WHERE key IN ({marks})", part).fetchall()
            return rows

        found: dict[str, dict[str, np.ndarray]] = {}
        bad: list[str] = []
        if self._memory is not None:
            return self._memory.get_many(keys, expect)
        for key, blob in self._guarded(read, lambda memory: []):
            try:
                arrays = st_load(bytes(blob))
            except (SafetensorError, TypeError, ValueError):
                bad.append(key)
                continue
            if expect is not None and not _fits(arrays, expect):
                bad.append(key)
                continue
            found[key] = arrays
        if bad:
            self._delete(bad)
        return found

    def _delete(self, keys: list[str]) -> None:
        def delete(db):
            with db:
                db.executemany("DELETE FROM features WHERE key = ?", [(k,) for k in keys])

        self._guarded(delete, lambda memory: None)

    def put_many(self, items: dict[str, dict[str, np.ndarray]]) -> None:
        """Store ``{key: {name: array}}`` in one transaction (safetensors blobs)."""
        if not items:
            return
        rows = [(k, st_save({n: np.ascontiguousarray(a) for n, a in v.items()})) for k, v in items.items()]

        def write(db):
            with db:  # one transaction per batch
                db.executemany("INSERT OR REPLACE INTO features (key, data) VALUES (?, ?)", rows)

        self._guarded(write, lambda memory: memory.put_many(items))

    def __len__(self) -> int:
        return self._guarded(lambda db: db.execute("SELECT COUNT(*) FROM features").fetchone()[0], len)


# SQLite's own verdict on a file: these two mean its bytes are not a (whole) database; every other
# error (SQLITE_READONLY, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_IOERR, SQLITE_PERM) is about writing it.
DAMAGE_CODES = ("SQLITE_CORRUPT", "SQLITE_NOTADB")


def _damaged(err: sqlite3.Error) -> bool:
    name = getattr(err, "sqlite_errorname", None)
    if name is None:  # Python 3.10 has no error codes: SQLite's messages for the same two
        return any(m in str(err) for m in ("file is not a database", "disk image is malformed"))
    return name.startswith(DAMAGE_CODES)


def _fits(arrays: dict[str, np.ndarray], expect: dict[str, int]) -> bool:
    for name, dim in expect.items():
        a = arrays.get(name)
        if a is None or a.dtype != np.float32 or a.shape != (dim,) or not np.isfinite(a).all():
            return False
    return True


class MemoryCache(FeatureCache):
    """A cache that lives only for this process (``--no-cache``)."""

    def __init__(self):
        self.root = None
        self._data: dict[str, dict[str, np.ndarray]] = {}

    def get_many(self, keys, expect=None):
        """The stored arrays of those ``keys`` that are present."""
        return {k: self._data[k] for k in keys if k in self._data}

    def put_many(self, items):
        """Store ``{key: {name: array}}`` in memory."""
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
