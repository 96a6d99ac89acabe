"""Which precision a classifier's features are computed at: recorded at fit, used again at predict.

``Classifier(precision=...)``: ``auto`` (the default: the fastest precision that passed the quality
gate on this machine, :mod:`wordsight.features.engines.default_precision`), ``fp32`` (exact,
bit-for-bit the same on every machine), ``bf16`` or ``int8`` (each behind the quality gate).
What the features were actually computed at is recorded per encoder in the fitted state and the
saved model, and predictions use it again unless the parameter names a precision. A model whose
features were bf16, loaded on a CPU without bf16, predicts with fp32 features and says so: the gate
held bf16 within cosine 0.99 of fp32, so this is the closest this machine can come.
"""
from __future__ import annotations

import warnings

CONCRETE = ("fp32", "bf16", "int8")


def resolve(encoders: list[str], precision: str) -> dict[str, str]:
    """The precision each encoder's features get under ``precision`` on this machine."""
    if precision != "auto":
        return {e: precision for e in encoders}
    from ..encoders.tilebag import reader
    from ..features.engines.batch import shared_runner

    return {e: shared_runner(reader(e), "auto", "auto").precision for e in encoders}  # a tile bag: its reader's


def for_features(encoders: list[str], precision: str, recorded: dict[str, str] | None) -> dict[str, str]:
    """The precision to extract each encoder's features at: the parameter when it names one, else
    what the fit recorded (else ``auto``); bf16 becomes fp32 on a CPU without bf16."""
    from ..features.engines.cpu import has_bf16

    out = {}
    for e in encoders:
        p = precision if precision != "auto" else (recorded or {}).get(e, "auto")
        if p == "bf16" and not has_bf16():
            warnings.warn(f"{e}: features were bf16, this CPU has no bf16: using fp32 features", RuntimeWarning,
                          stacklevel=3)
            p = "fp32"
        out[e] = p
    return out
