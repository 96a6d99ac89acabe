"""The OpenVINO engine: the encoder's ONNX export (fp32, bf16) or its NNCF int8 model, on the CPU.

fp32 is asked for explicitly (``INFERENCE_PRECISION_HINT=f32``): on a CPU with AVX512_BF16 or AMX,
OpenVINO's default is bf16, whose features differ from fp32's. fp32 OpenVINO agrees with ONNX
Runtime and torch within ``RTOL``/``ATOL`` (measured max |diff| ~7e-6 on EfficientNet-Lite0) and
shares their cache entries; bf16 and int8 get entries of their own.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}  # int8: the quantised graph, the rest in f32
FINGERPRINT_SUFFIX = {"fp32": "", "bf16": "+bf16", "int8": "+int8-nncf"}


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def compile_model(path, precision: str = "fp32", threads: int | None = None):
    """An OpenVINO CPU model compiled for ``precision``, one stream on ``threads`` threads."""
    import openvino as ov

    from .basics import default_threads

    config = {"INFERENCE_PRECISION_HINT": HINTS[precision], "NUM_STREAMS": 1,
              "INFERENCE_NUM_THREADS": int(threads or default_threads()),
              # decoding threads share the cores: pinning inference threads to cores would fight them
              "ENABLE_CPU_PINNING": False}
    core = ov.Core()
    return core.compile_model(core.read_model(str(path)), "CPU", config)


def outputs(compiled, result, names, n: int, precision: str) -> dict[str, np.ndarray]:
    """``result``'s outputs by name, copied (an infer request reuses its buffers), each checked to
    hold one row per input image: OpenVINO has been seen to return empty outputs rather than fail
    (bf16 asked of a CPU plugin whose oneDNN kernels are capped below AVX-512 by
    ``ONEDNN_MAX_CPU_ISA``); a wrong row count is an error naming the engine and precision, never
    rows silently lost or misaligned."""
    out = {name: np.array(result[o]) for name, o in zip(names, compiled.outputs)}
    for name, a in out.items():
        if a.ndim == 0 or a.shape[0] != n:
            raise RuntimeError(f"OpenVINO ({precision} on the CPU) returned {name} of shape {a.shape} for {n} "
                               f"images: this CPU cannot run it; use precision='fp32' or engine='onnx'")
    return out


class OpenVinoRunner:
    engine = "openvino"

    def __init__(self, path, config, preprocess, *, precision: str = "fp32", fingerprint: str | None = None,
                 threads: int | None = None, flexible_size: bool = False):
        from .basics import DEFAULT_BATCH, default_threads

        if precision not in HINTS:
            raise ValueError(f"OpenVINO precision must be one of {', '.join(HINTS)}, not {precision!r}")
        self.path, self.config, self.preprocess = path, config, preprocess
        self.precision, self.flexible_size = precision, flexible_size
        self.threads = threads or default_threads()
        self.compiled = compile_model(path, precision, self.threads)
        self.output_names = [o.get_any_name() for o in self.compiled.outputs]
        self.fingerprint = (fingerprint or config.fingerprint) + FINGERPRINT_SUFFIX[precision]
        if precision == "int8" and "accuracy-aware" in Path(path).stem:  # other layers in int8: other features
            self.fingerprint += "-accuracy-aware"
        self.batch_size = DEFAULT_BATCH["onnx"]
        self._local = threading.local()  # an infer request is not thread-safe: one per thread

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        result = request.infer({0: np.ascontiguousarray(x, np.float32)})
        return outputs(self.compiled, result, self.output_names, len(x), self.precision)
