"""What every engine module shares: tolerances, batch defaults, thread count, what is installed."""
from __future__ import annotations

import os

import torch

# fp32 ONNX Runtime vs torch, measured on the packaged CNNs: max |diff| about 1e-5 on embeddings of
# magnitude up to ~6. Engines whose outputs agree within this share cache entries.
RTOL, ATOL = 1e-3, 1e-4

# Batch sizes measured on 2 CPU cores (docs/MODELS speed table): torch is fastest per image at
# 8-16; ONNX Runtime gains a little up to 32. These size the chunks read ahead; each model call's
# batch is measured per machine (engines.tuning) unless given.
DEFAULT_BATCH = {"torch": 16, "onnx": 32}


def default_threads() -> int:
    return max(1, min(torch.get_num_threads(), os.cpu_count() or 1))


def onnx_available() -> bool:
    """Whether ``onnx`` and ``onnxruntime`` can be imported (the ``fast`` extra)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def versions() -> dict[str, str]:
    """The versions a measurement depends on: wordsight's and each installed engine's."""
    from importlib.metadata import PackageNotFoundError, version

    from ..._version import __version__

    out = {"wordsight": __version__}
    for name in ("onnxruntime", "openvino"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "-"
    return out
