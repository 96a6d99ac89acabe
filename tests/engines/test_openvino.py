"""OpenVINO beside ONNX Runtime and torch: fp32 equality and shared cache, the measured auto choice,
bf16 only on CPUs that compute it, and the precision a saved model's features had."""
import json
import os

import numpy as np
import pytest

from wordsight.encoders import load_model
from wordsight.estimator.heads import LogisticHead
from wordsight.features import extract_features
from wordsight.features.engines import ATOL, RTOL, make_runner
from wordsight.features.engines import engine_choice as selection
from wordsight.features.engines.cpu import has_bf16
from wordsight.features.engines.precisions import PrecisionUnavailable

pytest.importorskip("openvino")
pytest.importorskip("onnxruntime")


def test_openvino_fp32_equals_torch_and_onnx_and_shares_their_cache(mixed_folder, tmp_path):
    opts = dict(quiet=True, batch_size=4)  # a given batch size: no batch-size tuning in this test
    ref = extract_features(mixed_folder, engine="torch", cache=tmp_path, **opts)
    ov = extract_features(mixed_folder, engine="openvino", cache=False, **opts)
    ort = extract_features(mixed_folder, engine="onnx", cache=False, **opts)
    assert ov.paths == ref.paths and ov.computed == 9 and len(ov.failures) == 1
    for other in (ov, ort):
        np.testing.assert_allclose(other.embeddings, ref.embeddings, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(other.arrays["logits"], ref.arrays["logits"], rtol=RTOL, atol=ATOL)
    runner = make_runner("efficientnet-lite0", "openvino")
    assert runner.engine == "openvino" and runner.precision == "fp32"
    assert runner.fingerprint == load_model("efficientnet-lite0").config.fingerprint
    again = extract_features(mixed_folder, engine="openvino", cache=tmp_path, **opts)
    assert again.cached == 9 and again.computed == 0  # torch's entries, read by OpenVINO


def test_auto_measures_the_engines_once_and_keeps_the_fastest(monkeypatch):
    enc = load_model("mobilenetv2")
    runner = make_runner("mobilenetv2", "auto")
    entry = selection.choice_entry(enc)
    rates = entry["images_per_second"]
    assert set(rates) == {"onnx/fp32", "openvino/fp32"} and all(r > 0 for r in rates.values())
    assert f"{runner.engine}/{runner.precision}" == max(rates, key=rates.get)
    # stored: a new process (empty memory) reads engines.json and measures nothing
    selection._memory.clear()
    monkeypatch.setattr(selection, "measure", lambda *a, **k: pytest.fail("measured twice"))
    assert make_runner("mobilenetv2", "auto").engine == runner.engine
    # the stored choice is what auto runs: flip it and auto follows
    path = os.path.join(os.environ["WORDSIGHT_CACHE"], selection.FILE)
    data = json.loads(open(path).read())
    key = next(k for k in data if k.startswith(enc.config.fingerprint))
    other = "onnx" if runner.engine == "openvino" else "openvino"
    data[key]["engine"] = other
    open(path, "w").write(json.dumps(data))
    selection._memory.clear()
    assert make_runner("mobilenetv2", "auto").engine == other


def test_cpus_without_bf16_fall_back_cleanly(monkeypatch):
    assert has_bf16("fpu avx2 avx512_bf16") and has_bf16("amx_bf16") and not has_bf16("fpu avx2 avx512f")
    monkeypatch.setenv("WORDSIGHT_CPU_FLAGS", "fpu avx2")
    assert not has_bf16()
    enc = load_model("efficientnet-lite0")
    with pytest.raises(PrecisionUnavailable, match="AVX512_BF16 or AMX"):
        make_runner(enc, "openvino", "bf16")
    assert ("openvino", "bf16") not in selection.candidates(enc, "auto")
    assert make_runner("efficientnet-lite0", "auto", "auto").precision == "fp32"
    # a model whose features were bf16 predicts with fp32 features here, and says so
    from wordsight.estimator.precision import for_features

    with pytest.warns(RuntimeWarning, match="no bf16"):
        assert for_features(["efficientnet-lite0"], "auto", {"efficientnet-lite0": "bf16"}) == {
            "efficientnet-lite0": "fp32"}
    monkeypatch.setenv("WORDSIGHT_CPU_FLAGS", "avx512_bf16")
    assert for_features(["efficientnet-lite0"], "auto", {"efficientnet-lite0": "bf16"}) == {
        "efficientnet-lite0": "bf16"}
    assert for_features(["efficientnet-lite0"], "int8", {"efficientnet-lite0": "bf16"}) == {
        "efficientnet-lite0": "int8"}  # told otherwise


def test_a_saved_model_records_its_features_precision_and_predicts_with_it(photo_folder, tmp_path, monkeypatch):
    from wordsight import Classifier

    monkeypatch.setenv("WORDSIGHT_CPU_FLAGS", "fpu avx2")  # no bf16: auto resolves to fp32 here
    clf = Classifier(head=LogisticHead(C=1.0), precision="auto").fit(photo_folder)
    assert clf.state_.precisions == {"efficientnet-lite0": "fp32"}
    clf.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["encoders"][0]["precision"] == "fp32" and config["params"]["precision"] == "auto"
    loaded = Classifier.load(tmp_path / "m")
    assert loaded.state_.precisions == {"efficientnet-lite0": "fp32"}
    np.testing.assert_allclose(loaded.predict_proba(photo_folder), clf.predict_proba(photo_folder), atol=1e-6)
    # a recorded bf16 is what predictions ask for (fp32 here, with a warning: no bf16 on this CPU)
    loaded.state_.precisions = {"efficientnet-lite0": "bf16"}
    with pytest.warns(RuntimeWarning, match="no bf16"):
        loaded.predict_proba(photo_folder)


def test_int8_recipe_keeps_the_stem_and_classifier_and_picks_the_overflow_fix_per_cpu(monkeypatch):
    import openvino as ov

    from wordsight.features.engines import int8_recipe
    from wordsight.features.engines.onnx_cache import fp32_model

    model = ov.Core().read_model(str(fp32_model(load_model("efficientnet-lite0"))))
    kept = int8_recipe.kept_in_fp32(model)
    ops = {o.get_friendly_name(): o.get_type_name() for o in model.get_ordered_ops()}
    first_conv = next(o.get_friendly_name() for o in model.get_ordered_ops() if o.get_type_name() == "Convolution")
    assert kept[0] == first_conv and "_conv_stem" in first_conv
    assert [ops[k] for k in kept[1:]] == ["MatMul"] and "_fc" in kept[1]
    monkeypatch.setenv("WORDSIGHT_CPU_FLAGS", "avx2 fma")
    assert int8_recipe.overflow_fix() == "ENABLE" and "overflow-fix-enable" in int8_recipe.recipe()
    monkeypatch.setenv("WORDSIGHT_CPU_FLAGS", "avx2 avx512_vnni")
    assert int8_recipe.overflow_fix() == "DISABLE" and "overflow-fix-disable" in int8_recipe.recipe()


def test_an_openvino_output_without_one_row_per_image_is_an_error_naming_the_precision(tmp_path):
    """Under an ISA cap OpenVINO's bf16 has returned (0, 1280) embeddings for 16 images: the runners
    check every output's rows against the batch instead of passing them on."""
    import openvino as ov

    from wordsight.features.engines.openvino_runner import compile_model, outputs

    x = ov.opset13.parameter([-1, 3, 8, 8], np.float32, name="pixel_values")
    w = ov.opset13.constant(np.ones((4, 3, 3, 3), np.float32))
    conv = ov.opset13.convolution(x, w, [1, 1], [0, 0], [0, 0], [1, 1])
    pooled = ov.opset13.reduce_mean(conv, ov.opset13.constant(np.array([2, 3])), False)
    pooled.output(0).get_tensor().set_names({"embedding"})
    ov.save_model(ov.Model([pooled], [x]), str(tmp_path / "tiny.xml"))
    compiled = compile_model(tmp_path / "tiny.xml", "fp32", 1)
    images = np.full((2, 3, 8, 8), 0.5, np.float32)
    result = compiled.create_infer_request().infer({0: images})
    got = outputs(compiled, result, ["embedding"], 2, "fp32")
    np.testing.assert_allclose(got["embedding"], np.full((2, 4), 27 * 0.5), rtol=1e-6)  # 3x3x3 ones on 0.5
    for n in (0, 1, 3):
        with pytest.raises(RuntimeError, match=rf"OpenVINO \(bf16 on the CPU\) returned embedding of shape "
                                               rf"\(2, 4\) for {n} images: .*precision='fp32'"):
            outputs(compiled, result, ["embedding"], n, "bf16")
