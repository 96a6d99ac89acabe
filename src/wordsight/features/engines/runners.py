"""Model runners: a batch of preprocessed images (B, 3, H, W) float32 in, named arrays out.

``TorchRunner`` runs the encoder module (inference mode, channels-last); ``OnnxRunner`` runs its
ONNX export under ONNX Runtime, fp32 or int8. Every runner has a ``fingerprint`` for cache keys:
the encoder's own when its outputs equal the torch encoder's within tolerance (fp32 ONNX), a
distinct one otherwise (int8).
"""
from __future__ import annotations

import os
import warnings

import numpy as np
import torch

# fp32 ONNX Runtime vs torch, measured on the packaged CNNs: max |diff| about 1e-5 on embeddings of
# magnitude up to ~6. Engines whose outputs agree within this share cache entries.
RTOL, ATOL = 1e-3, 1e-4

# Batch sizes measured on 2 CPU cores (docs/MODELS speed table): torch is fastest per image at
# 8-16; ONNX Runtime gains a little up to 32. These size the chunks read ahead; each model call's
# batch is measured per machine (engines.tuning) unless given.
DEFAULT_BATCH = {"torch": 16, "onnx": 32}

ENGINES = ("auto", "torch", "onnx", "ray")
PRECISIONS = ("fp32", "int8")


def default_threads() -> int:
    return max(1, min(torch.get_num_threads(), os.cpu_count() or 1))


class TorchRunner:
    engine = "torch"
    precision = "fp32"

    def __init__(self, encoder, channels_last: bool = True):
        self.encoder = encoder.eval()
        self.config = encoder.config
        self.preprocess = encoder.preprocess
        self.fingerprint = encoder.config.fingerprint
        self.batch_size = DEFAULT_BATCH["torch"]
        self.threads = torch.get_num_threads()
        self.channels_last = channels_last
        from ...encoders.base import CNNEncoder

        self.flexible_size = isinstance(encoder, CNNEncoder)  # any input size (global pooling)
        if channels_last:
            # Memory layout only: same numbers, faster convolutions on CPU (oneDNN).
            self.encoder.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        t = torch.from_numpy(np.ascontiguousarray(x))
        if self.channels_last:
            t = t.contiguous(memory_format=torch.channels_last)
        out = self.encoder(t)
        return {k: v.float().numpy() for k, v in out.items()}


class OnnxRunner:
    engine = "onnx"

    def __init__(self, path, config, preprocess, *, precision: str = "fp32", fingerprint: str | None = None,
                 threads: int | None = None, flexible_size: bool = False):
        from ...encoders.onnx import session

        self.flexible_size = flexible_size
        self.path = path
        self.config = config
        self.preprocess = preprocess
        self.precision = precision
        self.threads = threads or default_threads()
        self.session = session(path, self.threads)
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        base = fingerprint or config.fingerprint
        self.fingerprint = base if precision == "fp32" else f"{base}+{precision}"
        self.batch_size = DEFAULT_BATCH["onnx"]

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        outs = self.session.run(self.output_names, {self.input_name: np.ascontiguousarray(x, np.float32)})
        return dict(zip(self.output_names, outs))


def onnx_available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def make_runner(model, engine: str = "auto", precision: str = "fp32", *, cache_dir=None,
                threads: int | None = None, holdout=None):
    """The runner for ``model`` (a name or an ``ImageEncoder``).

    ``engine``: ``torch``, ``onnx``, or ``auto`` (ONNX Runtime when installed and the model
    exports, else torch). ``precision='int8'`` needs ONNX and passes the agreement gate
    (:func:`~wordsight.features.engines.onnx_cache.int8_model`) or raises ``QuantizationRefused``.
    """
    from ...encoders import load_model

    if engine not in ("auto", "torch", "onnx"):
        raise ValueError(f"engine must be one of auto, torch, onnx (ray wraps these), not {engine!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    encoder = load_model(model) if isinstance(model, str) else model
    runner = _make_runner(encoder, engine, precision, cache_dir=cache_dir, threads=threads, holdout=holdout)
    if not isinstance(model, str):
        # An encoder object may hold other weights than the packaged model of its name (fine-tuned,
        # perturbed): its features are cached under its own weights.
        runner.fingerprint = f"{runner.fingerprint}+w{_weights_digest(encoder)}"
    return runner


def _weights_digest(encoder) -> str:
    from ...encoders.onnx import weights_digest

    return weights_digest(encoder)


def _make_runner(encoder, engine, precision, *, cache_dir, threads, holdout):
    if engine == "auto" and getattr(encoder, "generates_text", False):
        engine = "torch"  # caption models generate token by token: nothing to gain from an export
    if engine == "torch":
        if precision != "fp32":
            raise ValueError("int8 runs on the ONNX engine: use engine='onnx' or 'auto'")
        return TorchRunner(encoder)
    if not onnx_available():
        if engine == "onnx" or precision != "fp32":
            raise RuntimeError("the ONNX engine needs onnx and onnxruntime: pip install 'wordsight[fast]'")
        return TorchRunner(encoder)
    from .onnx_cache import fp32_model, int8_model

    try:
        path = fp32_model(encoder, cache_dir)
    except Exception as e:  # an architecture the exporter cannot trace
        reason = (str(e).strip().splitlines() or [""])[0][:300]  # exporter messages can embed whole tensors
        if engine == "onnx" or precision != "fp32":
            raise RuntimeError(f"ONNX export of {encoder.config.name} failed: {reason}") from e
        warnings.warn(f"ONNX export of {encoder.config.name} failed ({type(e).__name__}: {reason}); "
                      "using the torch engine", RuntimeWarning, stacklevel=2)
        return TorchRunner(encoder)
    if precision == "int8":
        path = int8_model(encoder, cache_dir, holdout=holdout, threads=threads)
    from ...encoders.base import CNNEncoder

    return OnnxRunner(path, encoder.config, encoder.preprocess, precision=precision, threads=threads,
                      flexible_size=isinstance(encoder, CNNEncoder))
