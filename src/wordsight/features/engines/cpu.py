"""What the CPU can do, read at run time: bf16 only where the hardware computes it.

OpenVINO's default inference precision on a CPU with AVX512_BF16 or AMX is already bf16, so the
fp32 engine asks for f32 explicitly and bf16 is offered only where one of these flags is reported.
``WORDSIGHT_CPU_FLAGS`` (a space-separated flag list, empty for none) overrides what the CPU
reports: tests and users force bf16 off (or claim it) with it.
"""
from __future__ import annotations

import os
from functools import lru_cache

BF16_FLAGS = ("avx512_bf16", "amx_bf16")
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # int8 dot products that accumulate in 32 bits
ENV = "WORDSIGHT_CPU_FLAGS"


@lru_cache(maxsize=1)
def _proc_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; else the platform's processor string)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "unknown"


def cpu_flags(flags: str | None = None) -> frozenset[str]:
    """The CPU's feature flags: ``flags`` if given, else ``$WORDSIGHT_CPU_FLAGS``, else /proc/cpuinfo."""
    if flags is None:
        flags = os.environ.get(ENV)
    return frozenset(flags.split()) if flags is not None else _proc_flags()


def has_bf16(flags: str | None = None) -> bool:
    """True where the CPU computes bf16 natively (AVX512_BF16 or AMX)."""
    return any(f in cpu_flags(flags) for f in BF16_FLAGS)


def capabilities(flags: str | None = None) -> dict[str, bool]:
    """What the lower precisions need, as this CPU (or ``$WORDSIGHT_CPU_FLAGS``) reports it."""
    have = cpu_flags(flags)
    return {"bf16": any(f in have for f in BF16_FLAGS), "int8_vnni": any(f in have for f in VNNI_FLAGS)}
