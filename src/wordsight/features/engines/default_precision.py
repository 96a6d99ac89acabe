"""The default precision: ``auto``, the fastest precision that passed the quality gate on this CPU.

Every verb, the server and the Python API default to ``precision="auto"``: on a CPU with
AVX512_BF16 or AMX that is OpenVINO bf16 once the gate (:mod:`.quality_gate`) has passed it (run
on first use, seconds, its figures stored beside the model), int8 where ``wordsight quantize`` has
accepted it, and fp32 elsewhere; which of them wins is measured (:mod:`.engine_choice`); ``batch.used`` says what a run used.
``$WORDSIGHT_PRECISION`` (``fp32``, ``bf16``, ``int8``) pins what ``auto`` becomes, for a whole
process: ``fp32`` gives features that are bit-for-bit the same on every machine (a test suite's
golden numbers, a published result). An explicit ``precision=`` always wins over both.
"""
from __future__ import annotations

import os

DEFAULT = "auto"
ENV = "WORDSIGHT_PRECISION"
CONCRETE = ("fp32", "bf16", "int8")


def pinned() -> str | None:
    """The precision ``$WORDSIGHT_PRECISION`` pins ``auto`` to (None: unset, empty or ``auto``)."""
    value = os.environ.get(ENV, "").strip().lower()
    if value in ("", "auto"):
        return None
    if value not in CONCRETE:
        raise ValueError(f"${ENV}={value!r}: must be one of {', '.join(CONCRETE)} or auto")
    return value


def effective(precision: str) -> str:
    """``precision`` as a runner is asked for it: ``auto`` becomes the pinned precision when one is set."""
    return (pinned() or DEFAULT) if precision == DEFAULT else precision


def describe(pairs: dict[str, tuple[str, str]]) -> str:
    """``{encoder: (engine, precision)}`` as one phrase: ``efficientnet-lite0 bf16 (openvino)``."""
    return ", ".join(f"{name} {p} ({e})" for name, (e, p) in pairs.items())
