"""Model runners: a batch of preprocessed images (B, 3, H, W) float32 in, named arrays out.

``TorchRunner`` runs the encoder module (inference mode, channels-last); ``OnnxRunner`` runs its
ONNX export under ONNX Runtime, fp32 or int8; ``OpenVinoRunner`` (openvino_runner) the same export
under OpenVINO, fp32, bf16 or int8. Every runner has a ``fingerprint`` for cache keys: the
encoder's own when its outputs equal the torch encoder's within tolerance (every fp32 engine), a
distinct one otherwise (bf16, int8).
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from .basics import ATOL, DEFAULT_BATCH, RTOL, default_threads, onnx_available  # noqa: F401  (re-exported)

ENGINES = ("auto", "torch", "onnx", "openvino", "ray")
# auto: the fastest precision this machine may use whose features pass the quality gate
PRECISIONS = ("fp32", "bf16", "int8", "auto")


class TorchRunner:
    """An encoder run in PyTorch (inference mode, channels-last): preprocessed batches in, embeddings and logits out."""
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

        self.flexible_size = getattr(encoder, "flexible_size", isinstance(encoder, CNNEncoder))  # global pooling
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
    """An encoder's ONNX export run by ONNX Runtime (fp32 or gated int8): preprocessed batches in, embeddings and logits out."""
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


def make_runner(model, engine: str = "auto", precision: str = "auto", *, cache_dir=None,
                threads: int | None = None, holdout=None, labels=None):
    """The runner for ``model`` (a name or an ``ImageEncoder``).

    ``engine``: ``torch``, ``onnx``, ``openvino``, or ``auto`` (the fastest of ONNX Runtime and
    OpenVINO on this machine, measured once: :mod:`.selection`; torch when neither is installed or
    the model does not export). ``precision``: ``fp32``; ``bf16`` (OpenVINO, CPUs with
    AVX512_BF16/AMX) and ``int8`` pass the quality gate (:mod:`.quality_gate`) or raise
    ``QuantizationRefused`` with the figures; ``auto`` lets ``engine='auto'`` pick the fastest
    precision that passed (the default; ``$WORDSIGHT_PRECISION`` pins it: :mod:`.default_precision`).
    ``holdout``/``labels``: the gate's images (default: photo crops).
    """
    from ...encoders import load_model
    from .default_precision import effective

    precision = effective(precision)
    if engine not in ("auto", "torch", "onnx", "openvino"):
        raise ValueError(f"engine must be one of auto, torch, onnx, openvino (ray wraps these), not {engine!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    encoder = load_model(model) if isinstance(model, str) else model
    runner = _make_runner(encoder, engine, precision, cache_dir=cache_dir, threads=threads, holdout=holdout,
                          labels=labels)
    if not isinstance(model, str):
        # An encoder object may hold other weights than the packaged model of its name (fine-tuned,
        # perturbed): its features are cached under its own weights.
        runner.fingerprint = f"{runner.fingerprint}+w{_weights_digest(encoder)}"
    return runner


def _weights_digest(encoder) -> str:
    from ...encoders.onnx import weights_digest

    return weights_digest(encoder)


def _make_runner(encoder, engine, precision, *, cache_dir, threads, holdout, labels):
    if engine == "auto" and getattr(encoder, "generates_text", False):
        engine = "torch"  # caption models generate token by token: nothing to gain from an export
    if engine == "torch":
        if precision not in ("fp32", "auto"):
            raise ValueError(f"{precision} runs on the ONNX or OpenVINO engine: use engine='auto', 'onnx' or 'openvino'")
        return TorchRunner(encoder)
    from .openvino_runner import openvino_available

    if engine == "openvino" and not (openvino_available() and onnx_available()):
        raise RuntimeError("the OpenVINO engine needs openvino, onnx and onnxruntime: pip install 'wordsight[fast]'")
    if engine in ("onnx", "auto") and not onnx_available():
        if engine == "onnx" or precision in ("bf16", "int8"):
            raise RuntimeError("the ONNX engine needs onnx and onnxruntime: pip install 'wordsight[fast]'")
        return TorchRunner(encoder)
    from .onnx_cache import fp32_model

    try:
        fp32_model(encoder, cache_dir)
    except Exception as e:  # an architecture the exporter cannot trace
        reason = (str(e).strip().splitlines() or [""])[0][:300]  # exporter messages can embed whole tensors
        if engine != "auto" or precision in ("bf16", "int8"):
            raise RuntimeError(f"ONNX export of {encoder.config.name} failed: {reason}") from e
        warnings.warn(f"ONNX export of {encoder.config.name} failed ({type(e).__name__}: {reason}); "
                      "using the torch engine", RuntimeWarning, stacklevel=2)
        return TorchRunner(encoder)

    def build(engine_: str, precision_: str):
        return _export_runner(encoder, engine_, precision_, cache_dir=cache_dir, threads=threads,
                              holdout=holdout, labels=labels)

    if engine != "auto":
        return build(engine, "fp32" if precision == "auto" else precision)
    from .engine_choice import choose

    runner = choose(encoder, precision, build, cache_dir=cache_dir, threads=threads)
    return runner if runner is not None else TorchRunner(encoder)


def _export_runner(encoder, engine, precision, *, cache_dir, threads, holdout, labels):
    from ...encoders.base import CNNEncoder
    from .precisions import gated_model

    path = gated_model(encoder, engine, precision, cache_dir, holdout=holdout, labels=labels, threads=threads)
    cls = OnnxRunner
    if engine == "openvino":
        from .openvino_runner import OpenVinoRunner as cls
    return cls(path, encoder.config, encoder.preprocess, precision=precision, threads=threads,
               flexible_size=getattr(encoder, "flexible_size", isinstance(encoder, CNNEncoder)))
