"""The quality gate for bf16 and int8: its figures against numpy, its thresholds at the boundary,
and the refusal path on a real int8 model with every figure in the message."""
import json

import numpy as np
import pytest

from wordsight.features.engines import QuantizationRefused, quality_gate
from wordsight.features.engines.quality_gate import check, measure, problems


def _pair(n=40, d=16, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, d)) + 3 * np.eye(4, d)[rng.integers(0, 4, n)]
    logits = rng.normal(size=(n, 10)) * 3
    new = {"embedding": emb + noise * rng.normal(size=emb.shape), "logits": logits.copy()}
    return {"embedding": emb, "logits": logits}, new


def test_figures_equal_an_independent_computation():
    ref, new = _pair(noise=0.05)
    flip = np.argsort(-ref["logits"].max(1))[:3]  # change the top class of three images
    new["logits"][flip] = new["logits"][flip][:, ::-1]
    labels = np.arange(40) % 4
    f = measure(ref, new, labels)
    a, b = ref["embedding"], new["embedding"]
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert f["cosine_mean"] == pytest.approx(cos.mean()) and f["cosine_min"] == pytest.approx(cos.min())
    p = np.exp(ref["logits"] - ref["logits"].max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    confident = p.max(1) >= 0.5
    same = ref["logits"].argmax(1) == new["logits"].argmax(1)
    assert f["n_confident"] == confident.sum() and f["top1_confident"] == pytest.approx(same[confident].mean())
    assert f["top1_all"] == pytest.approx(same.mean()) and f["n_probe"] == 20 and 0 <= f["probe_unchanged"] <= 1


def test_thresholds_hold_at_the_boundary():
    ok = {"n": 100, "cosine_mean": 0.99, "cosine_min": 0.94, "n_confident": 50, "top1_confident": 0.99,
          "probe_unchanged": 0.98, "n_probe": 50}
    assert problems(ok) == []
    for key, value, words in [("cosine_mean", 0.9899, "mean embedding cosine"),
                              ("cosine_min", 0.9399, "minimum embedding cosine"),
                              ("top1_confident", 0.9899, "where fp32 is confident"),
                              ("probe_unchanged", 0.9799, "linear probe unchanged")]:
        (only,) = problems({**ok, key: value})
        assert words in only
        with pytest.raises(QuantizationRefused, match=words) as err:
            check({**ok, key: value}, "int8")
        assert err.value.figures[key] == value
    assert problems({**ok, "n_confident": 0, "top1_confident": float("nan")}) == []  # nothing confident: no vote
    assert (quality_gate.MIN_COSINE_MEAN, quality_gate.MIN_COSINE_MIN, quality_gate.MIN_CONFIDENT_TOP1,
            quality_gate.MIN_PROBE_UNCHANGED, quality_gate.CONFIDENT_P) == (0.99, 0.94, 0.99, 0.98, 0.5)


def test_identical_outputs_pass_and_noise_is_refused():
    ref, same = _pair()
    assert problems(measure(ref, same, np.arange(40) % 4)) == []
    ref, noisy = _pair(noise=1.5)
    assert any("cosine" in p for p in problems(measure(ref, noisy, np.arange(40) % 4)))


def test_int8_refused_with_the_measured_figures_and_the_report_kept():
    pytest.importorskip("onnxruntime")
    from wordsight.encoders import load_model
    from wordsight.features.engines import make_runner
    from wordsight.features.engines.onnx_cache import HOLDOUT_PHOTOS, model_dir, reference_images

    enc = load_model("efficientnet-lite0")
    holdout = reference_images(HOLDOUT_PHOTOS, 24, enc.config, seed=1)
    labels = np.arange(24) % len(HOLDOUT_PHOTOS)
    with pytest.raises(QuantizationRefused) as err:
        make_runner(enc, "onnx", precision="int8", holdout=holdout, labels=labels)
    f = err.value.figures
    assert f["n"] == err.value.n == 24 and f["cosine_mean"] < 0.99
    assert f"cosine mean {f['cosine_mean']:.4f}" in str(err.value) and "precision='fp32'" in str(err.value)
    report = json.loads((model_dir(enc) / "gate-onnx-int8.json").read_text())
    assert report["accepted"] is False and report["figures"] == f and report["problems"]
    with pytest.raises(ValueError, match="runs on the ONNX or OpenVINO engine"):
        make_runner(enc, "torch", precision="int8")


def test_quantize_command_refuses_with_the_figures(tmp_path):
    """The CLI's refusal path: exit status 1 and the figures (the ONNX int8 built by the test above)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    r = subprocess.run([sys.executable, "-m", "wordsight", "quantize", "--engine", "onnx"], capture_output=True,
                       text=True, env=env, timeout=600)
    assert r.returncode == 1 and "int8 (onnx) for efficientnet-lite0 refused" in r.stderr
    assert "cosine mean" in r.stderr and "(200 held-out images)" in r.stderr
