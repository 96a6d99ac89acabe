"""``engine='auto'``: the fastest engine (and, when allowed, precision) on this machine, measured once.

Candidates: ONNX Runtime and OpenVINO at fp32 (whichever are installed). ``precision='auto'``
adds the lower precisions this machine may use: OpenVINO bf16 where the CPU computes bf16 and the
model passes the quality gate (measured here on first use), int8 where a gate report already
accepted it (``wordsight quantize`` builds and gates it: minutes, never started implicitly).
Each candidate is timed on random input at the model's input size, interleaved over a few rounds
(the fastest call per candidate: robust to a neighbour's burst on a shared machine), and the
winner is remembered in ``$WORDSIGHT_CACHE/engines.json`` beside ``batch_sizes.json``, keyed by
model, what was allowed, threads and machine; later runs only read it until it is stale
(:func:`stale`: another wordsight, ONNX Runtime or OpenVINO version, another CPU model, or older
than ``MAX_AGE_DAYS``), and ``wordsight engines --measure`` measures again.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from ..._util.caches import register_store
from . import tuning
from .basics import versions  # noqa: F401  (re-exported: part of what a stored choice records)

FILE = "engines.json"
ROUNDS, BATCH = 3, 16
# A choice is measured again after this long: a neighbour's load, a BIOS or kernel update change
# which engine wins without changing any version; a month costs a few seconds a month.
MAX_AGE_DAYS = 30
_memory: dict[str, dict] = register_store("engine-choice", {})
_lock = threading.Lock()


def candidates(encoder, precision: str, cache_dir=None) -> list[tuple[str, str]]:
    """(engine, precision) pairs ``engine='auto'`` may pick for ``precision`` (best guess first)."""
    from .basics import onnx_available
    from .openvino_runner import openvino_available

    ov, ort = openvino_available() and onnx_available(), onnx_available()  # OpenVINO reads the ONNX export
    if precision == "bf16":
        return [("openvino", "bf16")] if ov else []
    if precision == "int8":
        return [("openvino", "int8")] if ov else [("onnx", "int8")] if ort else []
    out = ([("openvino", "fp32")] if ov else []) + ([("onnx", "fp32")] if ort else [])
    if precision == "auto":
        out = _passed_lower(encoder, ov, ort, cache_dir) + out
    return out


def _passed_lower(encoder, ov: bool, ort: bool, cache_dir) -> list[tuple[str, str]]:
    from .cpu import has_bf16
    from .precisions import accepted_here, gate_report, variants

    out = []
    if ov and has_bf16():
        try:
            if gate_report(encoder, "openvino", "bf16", cache_dir)["accepted"]:
                out.append(("openvino", "bf16"))
        except Exception:  # a model OpenVINO cannot run in bf16: fp32 stays
            pass
    for engine, ok in (("openvino", ov), ("onnx", ort)):
        # int8 only as `wordsight quantize` accepted it on this CPU (its recipe, engine version, CPU model)
        if ok and any(accepted_here(encoder, engine, "int8", cache_dir, v) for v in variants(engine, "int8")):
            out.append((engine, "int8"))
    return out


def _key(encoder, precision: str, threads, pairs) -> str:
    allowed = ",".join(f"{e}/{p}" for e, p in pairs)
    return f"{encoder.config.fingerprint}|precision={precision}|{allowed}|threads={threads or 'default'}|" \
           f"{tuning.machine_id()}"


def measure(runners: dict, size: int, rounds: int = ROUNDS, batch: int = BATCH) -> dict[str, float]:
    """Images/s of each runner: one warm-up call, then ``rounds`` interleaved calls; the fastest call."""
    x = np.random.default_rng(0).normal(size=(batch, 3, size, size)).astype(np.float32)
    best = {}
    for name, r in runners.items():
        r(x)
        best[name] = float("inf")
    for _ in range(rounds):
        for name, r in runners.items():
            t = time.perf_counter()
            r(x)
            best[name] = min(best[name], time.perf_counter() - t)
    return {name: batch / max(t, 1e-9) for name, t in best.items()}


def stale(entry: dict, now: float | None = None) -> str | None:
    """Why a stored measurement no longer holds (None: it holds): other versions, another CPU
    model, or older than ``MAX_AGE_DAYS``. Entries written before these were recorded are stale."""
    from .cpu import cpu_model

    if not (isinstance(entry, dict) and entry.get("engine") in ("onnx", "openvino")
            and entry.get("precision") in ("fp32", "bf16", "int8") and _rates_ok(entry.get("images_per_second"))):
        return "unreadable"
    if entry.get("versions") != versions():
        return f"measured with {entry.get('versions') or 'unrecorded versions'}, now {versions()}"
    if entry.get("cpu") != cpu_model():
        return f"measured on {entry.get('cpu')!r}, this CPU is {cpu_model()!r}"
    try:
        age = (time.time() if now is None else now) - float(entry.get("measured_at", 0))
    except (TypeError, ValueError):
        return "unreadable"
    if not age <= MAX_AGE_DAYS * 86400:
        return f"measured {age / 86400:.0f} days ago (more than {MAX_AGE_DAYS})"
    return None


def _rates_ok(rates) -> bool:
    return isinstance(rates, dict) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                           for v in rates.values())


def choose(encoder, precision: str, build, *, cache_dir=None, threads=None, remeasure: bool = False):
    """The runner ``engine='auto'`` runs: ``build(engine, precision)`` makes one; the choice among
    :func:`candidates` is measured once per machine and kept until :func:`stale` (or ``remeasure``).
    Returns None when no candidate exists."""
    pairs = candidates(encoder, precision, cache_dir)
    if not pairs:
        return None
    if len(pairs) == 1:
        return build(*pairs[0])
    key = _key(encoder, precision, threads, pairs)
    from ..cache import default_cache_dir

    path = Path(default_cache_dir()) / FILE
    with _lock:
        entry = None if remeasure else (_memory.get(key) or tuning._read(path).get(key))
        if entry is None or stale(entry):
            runners = {f"{e}/{p}": build(e, p) for e, p in pairs}
            entry = _measured_entry(encoder, precision, runners)
            data = tuning._read(path)
            data[key] = entry
            tuning._write(path, data)
            _memory[key] = entry
            return runners[f"{entry['engine']}/{entry['precision']}"]
        _memory[key] = entry
    return build(entry["engine"], entry["precision"])


def _measured_entry(encoder, precision: str, runners: dict) -> dict:
    from .cpu import cpu_model

    rates = measure(runners, encoder.config.input_size or 224)
    best = max(rates, key=rates.get)
    return {"model": encoder.config.name, "asked": precision, "engine": best.split("/")[0],
            "precision": best.split("/")[1], "images_per_second": {k: round(v, 2) for k, v in rates.items()},
            "batch": BATCH, "measured": time.strftime("%Y-%m-%d %H:%M:%S"), "measured_at": time.time(),
            "cpu": cpu_model(), "versions": versions()}


def stored(cache_dir=None) -> dict[str, dict]:
    """Every stored measurement of this cache folder (key -> entry), as ``wordsight engines`` lists it."""
    from ..cache import default_cache_dir

    data = tuning._read(Path(cache_dir or default_cache_dir()) / FILE)
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def choice_entry(encoder, precision: str = "fp32", threads=None, cache_dir=None) -> dict | None:
    """The stored measurement behind the choice (None before the first run)."""
    from ..cache import default_cache_dir

    pairs = candidates(encoder, precision, cache_dir)
    return tuning._read(Path(default_cache_dir()) / FILE).get(_key(encoder, precision, threads, pairs))


def forget(encoder, cache_dir=None) -> int:
    """Drop the stored choices of ``encoder`` (the next ``engine='auto'`` measures again); how many."""
    from ..cache import default_cache_dir

    path = Path(cache_dir or default_cache_dir()) / FILE
    prefix = f"{encoder.config.fingerprint}|"
    with _lock:
        data = tuning._read(path)
        keep = {k: v for k, v in data.items() if not k.startswith(prefix)}
        if len(keep) != len(data):
            tuning._write(path, keep)
        for k in [k for k in _memory if k.startswith(prefix)]:
            del _memory[k]
    return len(data) - len(keep)
