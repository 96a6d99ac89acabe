"""Engines that run the one image pipeline: local (ONNX Runtime, OpenVINO or torch) and Ray Data.

:class:`EmbedBatch` is the engine-agnostic batch function (dict of arrays in, dict out) that all
of them call; :func:`make_runner` picks the model runner (``auto``: the fastest of ONNX Runtime and
OpenVINO fp32 on this machine, measured once; torch with channels-last when neither is installed);
bf16 and int8 are used only when they pass the quality gate (:class:`QuantizationRefused`
otherwise). See docs/manual.md, "Engines, precision and quantization".
"""
from .batch import EmbedBatch
from .onnx_cache import fp32_model
from .precisions import int8_model
from .quality_gate import PrecisionRefused, QuantizationRefused
from .runners import (
                      ATOL,
                      DEFAULT_BATCH,
                      ENGINES,
                      PRECISIONS,
                      RTOL,
                      OnnxRunner,
                      TorchRunner,
                      make_runner,
                      onnx_available,
)

__all__ = ["ATOL", "DEFAULT_BATCH", "ENGINES", "EmbedBatch", "OnnxRunner", "PRECISIONS", "PrecisionRefused",
           "QuantizationRefused", "RTOL", "TorchRunner", "fp32_model", "int8_model", "make_runner", "onnx_available"]
