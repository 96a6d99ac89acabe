"""Engines that run the one image pipeline: local (ONNX Runtime or torch) and Ray Data.

:class:`EmbedBatch` is the engine-agnostic batch function (dict of arrays in, dict out) that all
of them call; :func:`make_runner` picks the model runner (``auto``: ONNX Runtime fp32 when
installed, else torch with channels-last); int8 is used only when it agrees with fp32
(:class:`QuantizationRefused` otherwise). See README "Speed and scale".
"""
from .batch import EmbedBatch
from .onnx_cache import MIN_AGREEMENT, QuantizationRefused, fp32_model, int8_model
from .runners import ATOL, DEFAULT_BATCH, ENGINES, RTOL, OnnxRunner, TorchRunner, make_runner, onnx_available

__all__ = ["ATOL", "DEFAULT_BATCH", "ENGINES", "EmbedBatch", "MIN_AGREEMENT", "OnnxRunner", "QuantizationRefused",
           "RTOL", "TorchRunner", "fp32_model", "int8_model", "make_runner", "onnx_available"]
