"""OpenVINO int8 (issue 27, 2): the plain NNCF recipe first, accuracy-aware quantisation where the plain
model fails the gate, used only past the gate, with cache entries of its own. Building either model
takes minutes (``wordsight quantize``; figures in docs/benchmarks.md): here the gate's outcomes are
given and the decisions taken on them are checked."""
from __future__ import annotations

import json
import shutil

import pytest

from wordsight.encoders import load_model
from wordsight.features.engines import engine_choice, int8_recipe, precisions
from wordsight.features.engines.quality_gate import QuantizationRefused

FIGURES = {"n": 200, "cosine_mean": 0.98, "cosine_min": 0.89, "n_confident": 27, "top1_confident": 1.0,
           "top1_all": 0.9, "probe_unchanged": 0.93, "n_probe": 100}


def test_variants_and_recipes():
    assert precisions.variants("openvino", "int8") == ("plain", "accuracy-aware")
    assert precisions.variants("onnx", "int8") == ("plain",) and precisions.variants("openvino", "bf16") == ("plain",)
    plain, aware = int8_recipe.recipe("plain"), int8_recipe.recipe("accuracy-aware")
    assert aware.startswith(plain) and aware != plain and f"max-drop-{int8_recipe.MAX_DROP}" in aware
    with pytest.raises(ValueError, match="int8 variant must be one of plain, accuracy-aware"):
        int8_recipe.quantize("x.onnx", "y.xml", None, variant="qat")


def _fake_gate(monkeypatch, accepted: dict[str, bool], built: list):
    def report(encoder, engine, precision, cache_dir=None, *, variant="plain", **kw):
        figures = dict(FIGURES, cosine_mean=0.995, cosine_min=0.95, probe_unchanged=1.0) if accepted[variant] else FIGURES
        return {"accepted": accepted[variant], "figures": figures, "recipe": int8_recipe.recipe(variant)}

    def model_file(encoder, engine, precision, cache_dir=None, variant="plain"):
        built.append(variant)
        return f"image-int8-{variant}.xml"

    monkeypatch.setattr(precisions, "gate_report", report)
    monkeypatch.setattr(precisions, "model_file", model_file)


def test_accuracy_aware_only_where_plain_fails(monkeypatch):
    enc = load_model("efficientnet-lite0")
    built: list = []
    _fake_gate(monkeypatch, {"plain": True, "accuracy-aware": True}, built)
    assert precisions.gated_model(enc, "openvino", "int8") == "image-int8-plain.xml" and built == ["plain"]
    built.clear()
    _fake_gate(monkeypatch, {"plain": False, "accuracy-aware": True}, built)
    assert precisions.gated_model(enc, "openvino", "int8") == "image-int8-accuracy-aware.xml"
    built.clear()
    _fake_gate(monkeypatch, {"plain": False, "accuracy-aware": False}, built)
    with pytest.raises(QuantizationRefused, match=r"int8 \(openvino, plain then accuracy-aware\) .* refused") as err:
        precisions.gated_model(enc, "openvino", "int8")
    assert err.value.figures == FIGURES and built == []  # nothing runs that the gate refused
    # ONNX Runtime's int8 has one recipe: refused plain is refused
    _fake_gate(monkeypatch, {"plain": False, "accuracy-aware": True}, built)
    with pytest.raises(QuantizationRefused, match=r"int8 \(onnx\) for"):
        precisions.gated_model(enc, "onnx", "int8")


def test_an_accepted_accuracy_aware_report_lets_auto_take_int8(monkeypatch):
    monkeypatch.setenv("WORDSIGHT_CPU_FLAGS", "avx2 avx512_vnni")
    enc = load_model("efficientnet-lite0")
    files = {v: precisions.report_file(enc, "openvino", "int8", None, v) for v in ("plain", "accuracy-aware")}
    files["plain"].parent.mkdir(parents=True, exist_ok=True)
    assert files["accuracy-aware"].name == "gate-openvino-int8-accuracy-aware.json"
    saved = {v: f.read_text() if f.exists() else None for v, f in files.items()}
    try:
        files["plain"].write_text(json.dumps({"accepted": False}))
        files["accuracy-aware"].unlink(missing_ok=True)
        assert ("openvino", "int8") not in engine_choice.candidates(enc, "auto")
        files["accuracy-aware"].write_text(json.dumps({"accepted": True, "recipe": int8_recipe.recipe("accuracy-aware"),
                                                       **precisions.machine("openvino")}))
        assert ("openvino", "int8") in engine_choice.candidates(enc, "auto")
        files["accuracy-aware"].write_text(json.dumps({"accepted": True, "recipe": int8_recipe.recipe("plain"),
                                                       **precisions.machine("openvino")}))  # the other variant's
        assert ("openvino", "int8") not in engine_choice.candidates(enc, "auto")
        files["accuracy-aware"].write_text(json.dumps({"accepted": True, "recipe": int8_recipe.recipe("accuracy-aware"),
                                                       **precisions.machine("openvino")}))
        assert ("openvino", "int8") in engine_choice.candidates(enc, "auto")
        files["accuracy-aware"].write_text("{not json")
        assert ("openvino", "int8") not in engine_choice.candidates(enc, "auto")
    finally:
        for v, f in files.items():
            f.unlink(missing_ok=True) if saved[v] is None else f.write_text(saved[v])


def test_accuracy_aware_features_are_cached_apart(tmp_path):
    from wordsight.features.engines.onnx_cache import fp32_model
    from wordsight.features.engines.openvino_runner import OpenVinoRunner

    enc = load_model("efficientnet-lite0")
    fp32 = fp32_model(enc)
    plain, aware = tmp_path / "image-int8-nncf-disable.onnx", tmp_path / "image-int8-nncf-disable-accuracy-aware.onnx"
    shutil.copy(fp32, plain)
    shutil.copy(fp32, aware)
    a = OpenVinoRunner(plain, enc.config, enc.preprocess, precision="int8")
    b = OpenVinoRunner(aware, enc.config, enc.preprocess, precision="int8")
    assert a.fingerprint == enc.config.fingerprint + "+int8-nncf"
    assert b.fingerprint == a.fingerprint + "-accuracy-aware"
