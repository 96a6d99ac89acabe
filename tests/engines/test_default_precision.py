"""The default precision ``auto`` (issue 27): the fastest that passed the gate on this CPU, fp32 where
the CPU lacks bf16, pinned by $WORDSIGHT_PRECISION; the measured engine choice re-measured when stale;
``wordsight engines``; the precision printed and recorded. Every CPU capability is forced on and off
with $WORDSIGHT_CPU_FLAGS, and lower precisions are held to the gate's tolerances, never to equality."""
from __future__ import annotations

import inspect
import json
import os
import time

import numpy as np
import pytest

from wordsight import clear_caches
from wordsight.encoders import load_model
from wordsight.features.engines import default_precision, engine_choice
from wordsight.features.engines.runners import make_runner

from ..conftest import openvino_bf16_as_on_avx2

NO_BF16 = "fpu sse4_2 avx2 fma avx512f"  # an AVX2/AVX-512 CPU without bf16 or VNNI
BF16 = "fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile"


@pytest.fixture
def unpinned(monkeypatch):
    """``auto`` as users get it (the suite pins it to fp32), with fresh process-wide runners."""
    monkeypatch.delenv("WORDSIGHT_PRECISION", raising=False)
    clear_caches()
    yield monkeypatch
    clear_caches()


def test_auto_is_the_default_of_the_api_and_the_verbs():
    from wordsight import Classifier, extract_features, iter_features
    from wordsight.cli import build_parser
    from wordsight.estimator.feature_blocks import extract_blocks
    from wordsight.features.engines.batch import EmbedBatch, shared_runner
    from wordsight.features.parquet import write_shards

    assert Classifier().precision == "auto"
    for fn in (iter_features, EmbedBatch, shared_runner, make_runner, extract_blocks, write_shards):
        assert inspect.signature(fn).parameters["precision"].default == "auto", fn
    assert "precision" not in inspect.signature(extract_features).parameters  # passed on to iter_features
    args = build_parser(["embed"]).parse_args(["embed", "x", "--out", "y.parquet"])
    assert args.precision == "auto"


def test_the_pin(monkeypatch):
    monkeypatch.delenv("WORDSIGHT_PRECISION", raising=False)
    assert default_precision.pinned() is None and default_precision.effective("auto") == "auto"
    monkeypatch.setenv("WORDSIGHT_PRECISION", "auto")
    assert default_precision.pinned() is None
    for p in ("fp32", "bf16", "int8"):
        monkeypatch.setenv("WORDSIGHT_PRECISION", p.upper())
        assert default_precision.pinned() == p and default_precision.effective("auto") == p
        assert default_precision.effective("fp32") == "fp32"  # an explicit precision always wins
    monkeypatch.setenv("WORDSIGHT_PRECISION", "fp16")
    with pytest.raises(ValueError, match="WORDSIGHT_PRECISION='fp16'"):
        default_precision.effective("auto")


def test_without_bf16_auto_is_fp32_bit_for_bit(unpinned, mixed_folder):
    from wordsight import extract_features

    unpinned.setenv("WORDSIGHT_CPU_FLAGS", NO_BF16)
    enc = load_model("efficientnet-lite0")
    assert all(p == "fp32" for _, p in engine_choice.candidates(enc, "auto"))
    runner = make_runner("efficientnet-lite0")
    assert runner.precision == "fp32" and runner.fingerprint == enc.config.fingerprint
    default = extract_features(mixed_folder, cache=False, quiet=True)
    fp32 = extract_features(mixed_folder, cache=False, quiet=True, precision="fp32", engine=runner.engine)
    assert len(default.samples) == 9
    assert np.array_equal(default.embeddings, fp32.embeddings)  # the same engine, the same bits


def test_with_bf16_auto_offers_bf16_only_past_the_gate(unpinned):
    from wordsight.features.engines import precisions

    unpinned.setenv("WORDSIGHT_CPU_FLAGS", BF16)
    openvino_bf16_as_on_avx2(unpinned)
    enc = load_model("efficientnet-lite0")
    report = precisions.gate_report(enc, "openvino", "bf16")
    # bf16 is real on a CPU that has it, fp32 where the flag is only claimed: the gate's bounds hold on both
    assert report["accepted"] and report["figures"]["cosine_mean"] >= 0.99
    assert engine_choice.candidates(enc, "auto")[0] == ("openvino", "bf16")
    runner = make_runner("efficientnet-lite0")
    entry = engine_choice.choice_entry(enc, "auto")
    rates = entry["images_per_second"]
    assert set(rates) == {"openvino/bf16", "openvino/fp32", "onnx/fp32"}
    assert f"{runner.engine}/{runner.precision}" == max(rates, key=rates.get)
    assert runner.fingerprint.endswith("+bf16") == (runner.precision == "bf16")
    # a refused gate takes bf16 out of auto's choice
    unpinned.setattr(precisions, "gate_report", lambda *a, **k: {"accepted": False})
    assert ("openvino", "bf16") not in engine_choice.candidates(enc, "auto")
    # and a CPU without bf16 never offers it, gate or not
    unpinned.setenv("WORDSIGHT_CPU_FLAGS", NO_BF16)
    unpinned.setattr(precisions, "gate_report", lambda *a, **k: {"accepted": True})
    assert ("openvino", "bf16") not in engine_choice.candidates(enc, "auto")


def _int8_report(accepted, engine: str = "openvino", **changes) -> str:
    """A gate report as `wordsight quantize` writes it on this machine (its recipe, engine version, CPU)."""
    from wordsight.features.engines import int8_recipe, precisions

    recipe = int8_recipe.recipe() if engine == "openvino" else f"{engine}-int8"
    return json.dumps({"accepted": accepted, "recipe": recipe, **precisions.machine(engine), **changes})


def test_int8_joins_auto_once_quantize_accepted_it_on_this_cpu(unpinned, tmp_path):
    from wordsight.features.engines.onnx_cache import model_dir

    unpinned.setenv("WORDSIGHT_CPU_FLAGS", NO_BF16)
    enc = load_model("efficientnet-lite0")
    report = model_dir(enc) / "gate-openvino-int8.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    saved = report.read_text() if report.exists() else None
    try:
        report.write_text(_int8_report(False))
        assert ("openvino", "int8") not in engine_choice.candidates(enc, "auto")
        report.write_text(_int8_report(True))
        assert ("openvino", "int8") in engine_choice.candidates(enc, "auto")
        assert ("openvino", "int8") not in engine_choice.candidates(enc, "fp32")
        # a verdict from elsewhere (a shared cache folder) does not count here: another CPU model,
        # another OpenVINO, a report without them (written before they were kept); a truthy non-True
        for other in ({"cpu": "AMD EPYC 7763 64-Core Processor"}, {"engine_version": "2024.0"},
                      {"cpu": None}):
            report.write_text(_int8_report(True, **other))
            assert ("openvino", "int8") not in engine_choice.candidates(enc, "auto"), other
        report.write_text(_int8_report(1))
        assert ("openvino", "int8") not in engine_choice.candidates(enc, "auto")
        # accepted with the recipe of a CPU with VNNI (no overflow fix), read where AVX2 is all there is
        unpinned.setenv("WORDSIGHT_CPU_FLAGS", "fpu avx2 avx512f avx512_vnni")
        report.write_text(_int8_report(True))
        assert ("openvino", "int8") in engine_choice.candidates(enc, "auto")
        unpinned.setenv("WORDSIGHT_CPU_FLAGS", NO_BF16)
        assert ("openvino", "int8") not in engine_choice.candidates(enc, "auto")
    finally:
        report.unlink() if saved is None else report.write_text(saved)


def _fresh_entry(**changes) -> dict:
    from wordsight.features.engines.cpu import cpu_model

    entry = {"engine": "openvino", "precision": "fp32", "images_per_second": {"openvino/fp32": 1.0},
             "measured_at": time.time(), "cpu": cpu_model(), "versions": engine_choice.versions()}
    entry.update(changes)
    return entry


def test_a_choice_is_stale_after_a_version_a_cpu_or_its_age():
    now = time.time()
    assert engine_choice.stale(_fresh_entry(), now) is None
    limit = engine_choice.MAX_AGE_DAYS * 86400
    assert engine_choice.stale(_fresh_entry(measured_at=now - limit), now) is None
    assert "days ago" in engine_choice.stale(_fresh_entry(measured_at=now - limit - 1), now)
    assert "this CPU is" in engine_choice.stale(_fresh_entry(cpu="Some Other CPU"), now)
    old = dict(engine_choice.versions(), openvino="2020.1")
    assert "measured with" in engine_choice.stale(_fresh_entry(versions=old), now)
    assert engine_choice.stale({"engine": "onnx", "precision": "fp32"}, now)  # written before versions were kept
    assert set(engine_choice.versions()) == {"wordsight", "onnxruntime", "openvino"}


def _stored_key(enc) -> tuple[str, str]:
    path = os.path.join(os.environ["WORDSIGHT_CACHE"], engine_choice.FILE)
    data = json.loads(open(path).read())
    return path, next(k for k in data if k.startswith(enc.config.fingerprint) and "precision=fp32" in k)


def test_a_stale_choice_is_measured_again_and_a_fresh_one_is_kept(monkeypatch):
    clear_caches()
    enc = load_model("efficientnet-lite0")
    calls = []

    def fake(runners, size, **k):
        calls.append(sorted(runners))
        return {"onnx/fp32": 2.0, "openvino/fp32": 1.0}

    monkeypatch.setattr(engine_choice, "measure", fake)
    engine_choice.forget(enc)
    assert make_runner("efficientnet-lite0", "auto", "fp32").engine == "onnx" and len(calls) == 1
    path, key = _stored_key(enc)
    data = json.loads(open(path).read())
    assert data[key]["cpu"] and data[key]["versions"] == engine_choice.versions()
    # a fresh stored choice is what auto runs, unmeasured
    data[key] = _fresh_entry()
    open(path, "w").write(json.dumps(data))
    engine_choice._memory.clear()
    assert make_runner("efficientnet-lite0", "auto", "fp32").engine == "openvino" and len(calls) == 1
    # the same choice from another engine version is measured again
    data[key] = _fresh_entry(versions=dict(engine_choice.versions(), onnxruntime="1.0.0"))
    open(path, "w").write(json.dumps(data))
    engine_choice._memory.clear()
    assert make_runner("efficientnet-lite0", "auto", "fp32").engine == "onnx" and len(calls) == 2
    assert json.loads(open(path).read())[key]["versions"] == engine_choice.versions()
    clear_caches()


def test_engines_verb_lists_and_measures_again(monkeypatch, capsys):
    from wordsight.cli import main

    clear_caches()
    monkeypatch.setenv("WORDSIGHT_CPU_FLAGS", NO_BF16)
    monkeypatch.setattr(engine_choice, "measure", lambda runners, size, **k: {"onnx/fp32": 3.0, "openvino/fp32": 5.0})
    assert main(["engines", "--measure", "--precision", "fp32"]) == 0
    out = capsys.readouterr()
    assert "measured efficientnet-lite0: openvino/fp32" in out.err
    lines = out.out.splitlines()
    assert "bf16 (AVX512_BF16/AMX): no" in lines[0] and "forced by $WORDSIGHT_CPU_FLAGS" in lines[0]
    assert "default precision: auto, pinned to fp32 by $WORDSIGHT_PRECISION" in lines[2]
    line = next(x for x in lines if x.startswith("efficientnet-lite0 (precision fp32)"))
    assert "openvino/fp32; img/s openvino/fp32 5.0, onnx/fp32 3.0; measured 20" in line and "stale" not in line
    # an entry from another CPU is listed as stale
    enc = load_model("efficientnet-lite0")
    path, key = _stored_key(enc)
    data = json.loads(open(path).read())
    data[key]["cpu"] = "Another CPU"
    open(path, "w").write(json.dumps(data))
    monkeypatch.setenv("WORDSIGHT_CPU_FLAGS", BF16)
    assert main(["engines"]) == 0
    out = capsys.readouterr().out
    assert "bf16 (AVX512_BF16/AMX): yes" in out and "stale, measured again on next use: measured on 'Another CPU'" in out
    engine_choice.forget(enc)
    clear_caches()


def test_parquet_and_the_verbs_record_the_precision(photo_folder, tmp_path, capsys, monkeypatch):
    import pyarrow.parquet as pq

    from wordsight.cli import main

    assert main(["embed", str(photo_folder), "--out", str(tmp_path / "e.parquet"), "--quiet"]) == 0
    err = capsys.readouterr().err
    meta = pq.read_schema(tmp_path / "e.parquet").metadata
    assert meta[b"wordsight.precision"] == b"fp32" and meta[b"wordsight.model"] == b"efficientnet-lite0"
    engine = meta[b"wordsight.engine"].decode()
    assert engine in ("onnx", "openvino") and f"with efficientnet-lite0 fp32 ({engine};" in err
    assert main(["fit", str(photo_folder), "--out", str(tmp_path / "m"), "--fusion", "image", "--quiet"]) == 0
    assert "features: efficientnet-lite0 fp32 (" in capsys.readouterr().err
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["encoders"][0]["precision"] == "fp32" and config["params"]["precision"] == "auto"
    assert main(["predict", str(tmp_path / "m"), str(photo_folder / "cat"), "--quiet"]) == 0
    assert "features: efficientnet-lite0 fp32 (" in capsys.readouterr().err
    # --precision: fit asks for one, predict overrides the recorded one
    assert main(["fit", str(photo_folder), "--out", str(tmp_path / "m2"), "--fusion", "image", "--quiet",
                 "--precision", "fp32"]) == 0
    assert json.loads((tmp_path / "m2" / "config.json").read_text())["params"]["precision"] == "fp32"
    capsys.readouterr()
    monkeypatch.setenv("WORDSIGHT_CPU_FLAGS", BF16)
    openvino_bf16_as_on_avx2(monkeypatch)
    assert main(["predict", str(tmp_path / "m"), str(photo_folder / "cat"), "--quiet", "--precision", "bf16"]) == 0
    assert "features: efficientnet-lite0 bf16 (openvino)" in capsys.readouterr().err


def test_fp32_fitted_model_predicts_within_the_gate_on_bf16_features(unpinned, fashion_folder):
    """Fitted on fp32 features, predicting from bf16 features (and the reverse): the same classes.
    benchmarks/precision_agreement.py measures it on 1,000 Fashion-MNIST images (99.0% / 98.9% on
    an AMX CPU, the gate's probe asks 98%); 40 images here allow at most two changed."""
    from wordsight import Classifier
    from wordsight.estimator.heads import LogisticHead

    unpinned.setenv("WORDSIGHT_CPU_FLAGS", BF16)
    openvino_bf16_as_on_avx2(unpinned)
    train, test = fashion_folder / "train", fashion_folder / "test"
    for fit_at in ("fp32", "bf16"):
        clf = Classifier(head=LogisticHead(C=1.0), fusion="image", precision=fit_at, quiet=True).fit(train)
        assert clf.state_.precisions == {"efficientnet-lite0": fit_at}
        p = {}
        for at in ("fp32", "bf16"):
            p[at] = clf.set_params(precision=at).predict_proba(test)
        same = p["fp32"].argmax(1) == p["bf16"].argmax(1)
        assert len(same) == 40 and same.mean() >= 0.95, (fit_at, same.mean())
        assert np.abs(p["fp32"] - p["bf16"]).max() < 0.35


def test_the_feature_cache_keeps_each_precision_apart(unpinned, mixed_folder, tmp_path):
    from wordsight import extract_features
    from wordsight.features.engines.quality_gate import cosines

    unpinned.setenv("WORDSIGHT_CPU_FLAGS", BF16)
    openvino_bf16_as_on_avx2(unpinned)
    opts = dict(cache=tmp_path, quiet=True, engine="openvino")
    fp32 = extract_features(mixed_folder, precision="fp32", **opts)
    bf16 = extract_features(mixed_folder, precision="bf16", **opts)
    assert (fp32.computed, bf16.computed, bf16.cached) == (9, 9, 0)  # fp32's entries are not bf16's
    again = extract_features(mixed_folder, precision="bf16", **opts)
    assert (again.computed, again.cached) == (0, 9) and np.array_equal(again.embeddings, bf16.embeddings)
    assert cosines(fp32.embeddings, bf16.embeddings).min() >= 0.94  # the gate's bound, not equality


def test_a_gate_verdict_is_measured_again_under_another_engine_version_or_cpu(unpinned):
    from wordsight.features.engines import basics, precisions, quality_gate

    unpinned.setenv("WORDSIGHT_CPU_FLAGS", BF16)
    openvino_bf16_as_on_avx2(unpinned)
    enc = load_model("efficientnet-lite0")
    first = precisions.gate_report(enc, "openvino", "bf16")
    calls = []
    real = quality_gate.measure
    unpinned.setattr(quality_gate, "measure", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert precisions.gate_report(enc, "openvino", "bf16") == first and calls == []  # stored: only read
    unpinned.setattr(basics, "versions", lambda: {"wordsight": "0", "onnxruntime": "0", "openvino": "1999.0"})
    again = precisions.gate_report(enc, "openvino", "bf16")
    assert calls == [1] and again["key"] != first["key"]
    assert abs(again["figures"]["cosine_mean"] - first["figures"]["cosine_mean"]) < 1e-3
    from wordsight.features.engines import cpu

    unpinned.setattr(cpu, "cpu_model", lambda: "Another CPU")  # a cache folder shared with another machine
    assert precisions.gate_report(enc, "openvino", "bf16")["key"] != again["key"] and calls == [1, 1]
