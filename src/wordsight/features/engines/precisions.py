"""Lower precisions behind the quality gate: which model file runs, and whether it may.

``gated_model(encoder, engine, precision)`` returns the model file of ``precision`` on ``engine``
once it has passed :mod:`.quality_gate` on held-out images, building it the first time (int8:
the built-in recipe) and storing the gate's figures beside the model
(``<cache>/onnx/<model>-<key>/gate-<engine>-<precision>.json``) so that the next run, accepted or
refused, only reads them. bf16 exists only where the CPU computes it (:mod:`.cpu`).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ...encoders.onnx import session
from . import quality_gate
from .cpu import has_bf16
from .onnx_cache import HOLDOUT_PHOTOS, fp32_model, model_dir, reference_images

N_HOLDOUT = 200
LOWER = {("openvino", "bf16"), ("openvino", "int8"), ("onnx", "int8")}


class PrecisionUnavailable(RuntimeError):
    """This machine cannot run the precision at all (bf16 on a CPU without AVX512_BF16/AMX)."""


def builtin_holdout(config, n: int = N_HOLDOUT) -> tuple[np.ndarray, np.ndarray]:
    """``n`` crops of photos calibration never sees, and the photo each came from (probe labels)."""
    return reference_images(HOLDOUT_PHOTOS, n, config, seed=1), np.arange(n) % len(HOLDOUT_PHOTOS)


def _key(holdout, labels, recipe: str) -> str:
    h = hashlib.sha256(f"gate{quality_gate.GATE_VERSION}|{recipe}".encode())
    if holdout is not None:
        h.update(np.ascontiguousarray(holdout, np.float32).tobytes())
        h.update(np.asarray([str(v) for v in labels] if labels is not None else []).astype("U").tobytes())
    return h.hexdigest()[:16]


def _run(fn, x: np.ndarray, batch: int = 16) -> dict[str, np.ndarray]:
    parts = [fn(x[i : i + batch]) for i in range(0, len(x), batch)]
    return {n: np.concatenate([p[n] for p in parts]) for n in parts[0]}


def variants(engine: str, precision: str) -> tuple[str, ...]:
    """The recipes tried in turn for ``precision`` on ``engine``: OpenVINO int8 is quantised plainly
    first and accuracy-aware where the plain model fails the gate."""
    from .int8_recipe import VARIANTS

    return VARIANTS if (engine, precision) == ("openvino", "int8") else ("plain",)


def _suffix(variant: str) -> str:
    return "" if variant == "plain" else f"-{variant}"


def model_file(encoder, engine: str, precision: str, cache_dir=None, variant: str = "plain") -> Path:
    """The file ``engine`` runs at ``precision`` (built on first use, not yet gated)."""
    fp32 = fp32_model(encoder, cache_dir)
    if precision in ("fp32", "bf16"):
        return fp32
    folder = model_dir(encoder, cache_dir)
    if engine == "openvino":
        from .int8_recipe import overflow_fix, quantize

        path = folder / f"image-int8-nncf-{overflow_fix().lower()}{_suffix(variant)}.xml"
        if not path.exists() or not path.with_suffix(".bin").exists():
            quantize(fp32, path, encoder.config, variant=variant)
        return path
    from .onnx_cache import quantize_ort

    path = folder / "image-int8.onnx"
    if not path.exists():
        quantize_ort(encoder, fp32, path)
    return path


def _runner_fn(engine: str, path: Path, precision: str, threads):
    if engine == "openvino":
        from .openvino_runner import compile_model, outputs

        compiled = compile_model(path, precision, threads)
        request = compiled.create_infer_request()
        names = [o.get_any_name() for o in compiled.outputs]
        return lambda x: outputs(compiled, request.infer({0: x}), names, len(x), precision)
    sess = session(path, threads)
    names = [o.name for o in sess.get_outputs()]
    return lambda x: dict(zip(names, sess.run(names, {sess.get_inputs()[0].name: x})))


def report_file(encoder, engine: str, precision: str, cache_dir=None, variant: str = "plain") -> Path:
    """Where the gate's figures of ``precision`` on ``engine`` (``variant`` of its recipe) are kept."""
    return model_dir(encoder, cache_dir) / f"gate-{engine}-{precision}{_suffix(variant)}.json"


def _recipe(engine: str, precision: str, variant: str = "plain") -> str:
    from .int8_recipe import recipe as nncf_recipe

    return nncf_recipe(variant) if (engine, precision) == ("openvino", "int8") else f"{engine}-{precision}"


def machine(engine: str) -> dict:
    """What a gate verdict holds for besides its recipe: ``engine``'s version and the CPU model."""
    from .basics import versions
    from .cpu import cpu_model

    return {"engine_version": versions().get("openvino" if engine == "openvino" else "onnxruntime"),
            "cpu": cpu_model()}


def accepted_here(encoder, engine: str, precision: str, cache_dir=None, variant: str = "plain") -> bool:
    """Whether the stored gate report accepted ``precision`` on ``engine`` for this machine: with
    today's recipe (int8's overflow fix follows the CPU's VNNI), engine version and CPU model. A verdict
    from elsewhere (a cache folder shared with a VNNI or AMX machine, read on an AVX2-only one) does
    not count: ``auto`` neither runs what was gated on another CPU nor quantises unasked."""
    try:
        report = json.loads(report_file(encoder, engine, precision, cache_dir, variant).read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(report, dict) and report.get("accepted") is True
            and report.get("recipe") == _recipe(engine, precision, variant)
            and all(report.get(k) == v for k, v in machine(engine).items()))


def gate_report(encoder, engine: str, precision: str, cache_dir=None, *, holdout=None, labels=None,
                threads=None, variant: str = "plain") -> dict:
    """The gate's figures for ``precision`` on ``engine`` (measured once per held-out set, engine
    version and CPU model, stored)."""
    recipe = _recipe(engine, precision, variant)
    report_path = report_file(encoder, engine, precision, cache_dir, variant)
    here = machine(engine)
    # a verdict holds for one recipe, engine version and CPU model (a cache folder may be shared)
    key = _key(holdout, labels, f"{recipe}|{here['engine_version']}|{here['cpu']}")
    try:
        report = json.loads(report_path.read_text())
    except (OSError, ValueError):
        report = {}
    path = model_file(encoder, engine, precision, cache_dir, variant)
    if report.get("key") == key:
        return report
    source = "caller's held-out images"
    if holdout is None:
        holdout, labels = builtin_holdout(encoder.config)
        source = f"{len(holdout)} crops of scikit-image photos {', '.join(HOLDOUT_PHOTOS)}"
    x = np.ascontiguousarray(holdout, np.float32)
    ref = _run(_runner_fn(engine, fp32_model(encoder, cache_dir), "fp32", threads), x)
    new = _run(_runner_fn(engine, path, precision, threads), x)
    figures = quality_gate.measure(ref, new, labels)
    report = {"key": key, "engine": engine, "precision": precision, "recipe": recipe, "file": path.name,
              "figures": figures, "problems": quality_gate.problems(figures),
              "accepted": not quality_gate.problems(figures),
              "holdout": source, **here}
    tmp = report_path.with_name(f".{report_path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(report, indent=1))
    os.replace(tmp, report_path)
    return report


def int8_model(encoder, cache_dir=None, *, holdout: np.ndarray | None = None, labels=None,
               threads: int | None = None) -> Path:
    """Path of the ONNX Runtime int8 model when it passes the quality gate (:mod:`.quality_gate`),
    else ``QuantizationRefused`` with the measured figures. ``holdout``: preprocessed images
    (N, 3, H, W) to measure on, ``labels`` their classes for the probe (default: crops of photos
    that calibration never sees). The outcome is stored next to the model."""
    return gated_model(encoder, "onnx", "int8", cache_dir, holdout=holdout, labels=labels, threads=threads)


def gated_model(encoder, engine: str, precision: str, cache_dir=None, *, holdout=None, labels=None,
                threads=None) -> Path:
    """The model file for ``precision`` on ``engine`` if it passes the gate; else ``QuantizationRefused``
    (with every measured figure) or ``PrecisionUnavailable``."""
    if precision == "fp32":
        return fp32_model(encoder, cache_dir)
    if (engine, precision) not in LOWER:
        raise ValueError(f"precision {precision!r} does not run on the {engine} engine")
    if precision == "bf16" and not has_bf16():
        raise PrecisionUnavailable("bf16 needs a CPU with AVX512_BF16 or AMX; this one reports neither "
                                   "(see /proc/cpuinfo or $WORDSIGHT_CPU_FLAGS): use precision='fp32'")
    tried = variants(engine, precision)
    for variant in tried:
        report = gate_report(encoder, engine, precision, cache_dir, holdout=holdout, labels=labels, threads=threads,
                             variant=variant)
        if report["accepted"]:
            return model_file(encoder, engine, precision, cache_dir, variant)
    quality_gate.check(report["figures"], f"{precision} ({engine}{', ' + ' then '.join(tried) if len(tried) > 1 else ''}) "
                       f"for {encoder.config.name}")
    return model_file(encoder, engine, precision, cache_dir, tried[-1])
