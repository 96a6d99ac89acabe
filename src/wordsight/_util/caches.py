"""Every process-wide cache behind one place that can report and clear them.

Models, ONNX/torch runners, text maps, concept banks, LLMs and text embeddings are loaded once
per process and reused; ``cache_report()`` lists what is held and ``clear_caches()`` drops it
(tests, long-lived servers that switch models, memory pressure).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Hashable

_registry: dict[str, "ProcessCache"] = {}
_functions: dict[str, Callable] = {}  # functools.lru_cache-wrapped functions, by name


class ProcessCache:
    """A named, thread-safe dict with an optional bound (least recently used entries go first)."""

    def __init__(self, name: str, maxsize: int | None = None):
        if name in _registry:
            raise ValueError(f"a process cache named {name!r} exists already")
        self.name, self.maxsize = name, maxsize
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.RLock()
        _registry[name] = self

    def get(self, key: Hashable, default=None):
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
            return default

    def put(self, key: Hashable, value) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while self.maxsize is not None and len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def get_or_create(self, key: Hashable, factory: Callable):
        """The cached value of ``key``, made by ``factory()`` on first use (once per key)."""
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
            value = factory()
            self.put(key, value)
            return value

    def __contains__(self, key) -> bool:
        with self._lock:
            return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


_stores: dict[str, object] = {}  # other dict-like caches (len() and clear())


def register_store(name: str, store):
    """Report and clear a dict-like cache (anything with ``len()`` and ``clear()``) with the others."""
    _stores[name] = store
    return store


def register_function(name: str, fn: Callable) -> Callable:
    """Report and clear an ``functools.lru_cache`` function with the other caches."""
    _functions[name] = fn
    return fn


def cache_report() -> dict[str, dict]:
    """``{name: {"entries": n, "maxsize": m}}`` for every process cache."""
    out = {name: {"entries": len(c), "maxsize": c.maxsize} for name, c in _registry.items()}
    for name, fn in _functions.items():
        info = fn.cache_info()
        out[name] = {"entries": info.currsize, "maxsize": info.maxsize}
    for name, store in _stores.items():
        out[name] = {"entries": len(store), "maxsize": None}
    return dict(sorted(out.items()))


def clear_caches(name: str | None = None) -> None:
    """Drop one cache (by name) or all of them."""
    known = {*_registry, *_functions, *_stores}
    if name is not None and name not in known:
        raise KeyError(f"no process cache named {name!r}; known: {', '.join(sorted(known))}")
    for n, c in _registry.items():
        if name in (None, n):
            c.clear()
    for n, fn in _functions.items():
        if name in (None, n):
            fn.cache_clear()
    for n, store in _stores.items():
        if name in (None, n):
            store.clear()
