"""Fine-tuned encoders: ``ft:<base model>@<weights digest>`` names a packaged encoder whose weights
were changed by :mod:`wordsight.training.finetune`.

The name carries the digest of the weights (the same :func:`~.onnx.weights_digest` the engines
use), so the encoder's fingerprint, and with it every feature-cache key, differs from the frozen
encoder's: features of the two are never mixed. The name holds no path: the weights travel in
the saved model's folder (``encoder-<digest>.safetensors``, checksummed like every other file)
and are registered here, from bytes already read and checked, when that folder is loaded
(:func:`register_weights`). A name whose weights were never registered in this process is an
unavailable model with a clear error.
"""
from __future__ import annotations

import dataclasses
import hashlib
import threading

import numpy as np

from ._registry import create, get_config, register_prefix
from .config import EncoderConfig, MissingWeightsError

PREFIX = "ft"
DIGEST_LENGTH = 16
# The only integer tensors an encoder's state holds (BatchNorm's counters).
INT_TENSOR_SUFFIX = "num_batches_tracked"

_weights: dict[str, dict[str, np.ndarray]] = {}  # full name -> state dict (numpy)
_lock = threading.Lock()


class FinetunedWeightsError(ValueError):
    """A fine-tuned encoder's weights file does not fit its name or its base model."""


def tensors_digest(tensors: dict[str, np.ndarray]) -> str:
    """:func:`~.onnx.weights_digest` of a module whose ``state_dict()`` is ``tensors``."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(np.ascontiguousarray(tensors[name]).tobytes())
    return h.hexdigest()[:DIGEST_LENGTH]


def is_finetuned(name) -> bool:
    """Whether ``name`` names a fine-tuned encoder (``ft:<base>@<digest>``)."""
    return isinstance(name, str) and name.startswith(PREFIX + ":")


def finetuned_name(base: str, digest: str) -> str:
    return f"{PREFIX}:{base}@{digest}"


def split(name: str) -> tuple[str, str]:
    """(base model, digest) of ``ft:<base>@<digest>`` (or of what follows the colon)."""
    rest = name[len(PREFIX) + 1:] if is_finetuned(name) else name
    base, sep, digest = rest.rpartition("@")
    if not sep or not base or len(digest) != DIGEST_LENGTH or any(c not in "0123456789abcdef" for c in digest):
        raise FinetunedWeightsError(f"{name!r} is not a fine-tuned encoder name ({PREFIX}:<base model>@<16 hex digits>)")
    if is_finetuned(base):
        raise FinetunedWeightsError(f"{name!r}: the base of a fine-tuned encoder is a packaged model, not {base!r}")
    return base, digest


def check_tensors(tensors: dict[str, np.ndarray], where: str) -> None:
    """Float tensors finite, integers only where an encoder keeps counters."""
    for key, a in tensors.items():
        if key.endswith(INT_TENSOR_SUFFIX):
            if a.dtype not in (np.int64, np.int32):
                raise FinetunedWeightsError(f"{where}: tensor {key!r} must be an integer counter, not {a.dtype}")
        elif a.dtype not in (np.float32, np.float64, np.float16):
            raise FinetunedWeightsError(f"{where}: tensor {key!r} has dtype {a.dtype}; encoder weights are floats")
        elif not np.isfinite(a).all():
            raise FinetunedWeightsError(f"{where}: tensor {key!r} holds NaN or infinite values")


def register_weights(name: str, tensors: dict[str, np.ndarray], where: str = "fine-tuned weights") -> str:
    """Make ``name`` loadable with ``tensors`` (a full state dict), after checking that they are
    what the name says: their digest is the name's, and their names and shapes are the base
    model's (checked against its config-free state dict when first loaded)."""
    base, digest = split(name)
    check_tensors(tensors, where)
    actual = tensors_digest(tensors)
    if actual != digest:
        raise FinetunedWeightsError(f"{where}: weights digest {actual} does not match the encoder name {name!r}: "
                                    "the file was changed after fine-tuning")
    get_config(base)  # the base model exists here
    with _lock:
        _weights[name] = tensors
    return name


def register_module(base: str, module) -> str:
    """Register the weights of a fine-tuned ``module`` (an encoder built from ``base``); its name."""
    tensors = {k: v.detach().cpu().contiguous().numpy().copy() for k, v in module.state_dict().items()}
    return register_weights(finetuned_name(base, tensors_digest(tensors)), tensors)


def registered(name: str) -> dict[str, np.ndarray]:
    """The state dict registered for ``name``."""
    with _lock:
        if name not in _weights:
            raise MissingWeightsError(f"fine-tuned encoder {name!r} is not loaded in this process: load the saved "
                                      "model folder that holds its weights (Classifier.load)")
        return _weights[name]


def _config(rest: str) -> EncoderConfig:
    base, digest = split(rest)
    name = finetuned_name(base, digest)
    cfg = get_config(base)
    return dataclasses.replace(cfg, name=name, weight_source=f"fine-tuned from {base} (weights digest {digest})",
                               install_hint="load the saved model folder that holds its weights",
                               available=lambda: name in _weights)


def check_fits(tensors: dict[str, np.ndarray], own: dict, name: str) -> None:
    """``tensors`` has exactly the names and shapes of the base model's state dict ``own``."""
    wrong = sorted(set(own) ^ set(tensors))[:3] or [k for k in own if tuple(own[k].shape) != tensors[k].shape][:3]
    if wrong:
        raise FinetunedWeightsError(f"{name}: the weights do not fit {split(name)[0]} (tensors {wrong})")


@register_prefix(PREFIX, _config)
def _build(rest: str):
    import torch

    base, digest = split(rest)
    name = finetuned_name(base, digest)
    tensors = registered(name)
    encoder = create(base)  # a fresh module: the packaged one stays as it was
    check_fits(tensors, encoder.state_dict(), name)
    encoder.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()}, strict=True)
    encoder.config = _config(rest)
    return encoder.eval()
