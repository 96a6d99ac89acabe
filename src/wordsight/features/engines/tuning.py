"""Batch size: measured once per machine, model, engine and input size, then remembered.

The best batch size depends on the CPU (cache sizes, cores), the engine and the input size: on
2 cores the packaged CNNs ran 2-3x faster per image at 8-16 than at 64 under torch, while ONNX
Runtime gained a little up to 32. Rather than trust one table, the engine times candidate sizes
from 4 to 32 on random input the first time a (model, engine, precision, threads, input size) runs on a
machine (a few seconds), keeps the fastest, and writes the measurement to
``$WORDSIGHT_CACHE/batch_sizes.json`` so that later runs only read it. An explicit
``batch_size`` always wins.
"""
from __future__ import annotations

import json
import os
import platform
import threading
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..._util.caches import register_store

# Up to 32: on 2 idle cores ONNX Runtime ran EfficientNet-Lite0 at 117-122 img/s for every size
# from 4 to 64, and 64 costs ~0.5 GB more peak memory than 32 for 224-px photos.
CANDIDATES = (4, 8, 16, 32)
FILE = "batch_sizes.json"
_memory: dict[str, int] = register_store("batch-sizes", {})
_lock = threading.Lock()


@lru_cache(maxsize=1)
def machine_id() -> str:
    from .cpu import cpu_model

    return f"{platform.machine()}|{cpu_model()}|{os.cpu_count()} cpus"


def tuning_key(runner, size: int) -> str:
    threads = getattr(runner, "threads", None) or "default"
    return (f"{runner.fingerprint}|{runner.engine}|{runner.precision}|threads={threads}|{size}px|"
            f"batch<={max(CANDIDATES)}|{machine_id()}")


def measure(runner, size: int, candidates=CANDIDATES, repeats: int = 3) -> dict[int, float]:
    """Images per second at each candidate batch size (random input, after one warm-up call)."""
    x = np.random.default_rng(0).normal(size=(max(candidates), 3, size, size)).astype(np.float32)
    rates: dict[int, float] = {}
    for b in sorted(candidates):
        runner(x[:b])
        t = time.perf_counter()
        for _ in range(repeats):
            runner(x[:b])
        rates[b] = repeats * b / max(time.perf_counter() - t, 1e-9)
    return rates


def tuned_batch_size(runner, size: int, cache_dir: Path | None = None) -> int:
    """The remembered best batch size for ``runner`` at ``size`` px, measured on first use."""
    key = tuning_key(runner, size)
    if key in _memory:
        return _memory[key]
    from ..cache import default_cache_dir

    path = Path(cache_dir or default_cache_dir()) / FILE
    with _lock:
        data = _read(path)
        if key not in data:
            rates = measure(runner, size)
            data = _read(path)  # another process may have written meanwhile
            data[key] = {"batch_size": max(rates, key=rates.get),
                         "images_per_second": {str(b): round(r, 2) for b, r in rates.items()},
                         "measured": time.strftime("%Y-%m-%d %H:%M:%S")}
            _write(path, data)
        _memory[key] = int(data[key]["batch_size"])
    return _memory[key]


def tuning_entry(runner, size: int, cache_dir: Path | None = None) -> dict:
    """The stored measurement behind :func:`tuned_batch_size` (batch size, images per second)."""
    from ..cache import default_cache_dir

    tuned_batch_size(runner, size, cache_dir)
    return _read(Path(cache_dir or default_cache_dir()) / FILE)[tuning_key(runner, size)]


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write(path: Path, data: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(path)
    except OSError:  # a read-only cache only costs a re-measurement next time
        pass
