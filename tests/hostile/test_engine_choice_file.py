"""A damaged engines.json and a wrong $WORDSIGHT_PRECISION: measured again, listed, or one line."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from wordsight import clear_caches
from wordsight.encoders import load_model
from wordsight.features.engines import engine_choice
from wordsight.features.engines.runners import make_runner


def test_damaged_entries_are_measured_again_and_listed(monkeypatch, capsys):
    from wordsight.cli import main

    enc = load_model("efficientnet-lite0")
    make_runner("efficientnet-lite0", "auto", "fp32")  # a stored choice to damage
    path = os.path.join(os.environ["WORDSIGHT_CACHE"], engine_choice.FILE)
    data = json.loads(open(path).read())
    # every stored choice of this model at fp32 (earlier tests of the session may have stored more than one)
    keys = [k for k in data if k.startswith(enc.config.fingerprint) and "precision=fp32" in k]
    assert keys
    stored = {k: data[k] for k in keys}
    calls = []
    monkeypatch.setattr(engine_choice, "measure",
                        lambda runners, size, **k: calls.append(1) or {"onnx/fp32": 2.0, "openvino/fp32": 1.0})
    damages = [lambda old: [1, 2], lambda old: {"engine": "tpu", "precision": "fp32"},
               lambda old: {"engine": "onnx", "precision": "fp32", "images_per_second": {"onnx/fp32": "fast"}},
               lambda old: {**old, "measured_at": "yesterday"}]
    for damage in damages:
        data.update({k: damage(stored[k]) for k in keys})
        data["another|key"] = "not an entry"
        open(path, "w").write(json.dumps(data))
        assert main(["engines"]) == 0
        out = capsys.readouterr().out
        assert "CPU: " in out and "Traceback" not in out
        engine_choice._memory.clear()
        clear_caches()  # runners made by earlier tests of the session are not reused
        n = len(calls)
        assert make_runner("efficientnet-lite0", "auto", "fp32").engine == "onnx" and len(calls) == n + 1
    open(path, "w").write("{ not json")
    assert main(["engines"]) == 0 and "nothing measured yet" in capsys.readouterr().out
    clear_caches()


def test_a_wrong_precision_pin_is_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "WORDSIGHT_PRECISION": "fp16"}
    (tmp_path / "a.png").write_bytes(b"")
    r = subprocess.run([sys.executable, "-m", "wordsight", "embed", str(tmp_path), "--out", str(tmp_path / "o.parquet"),
                        "--quiet"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 1
    assert r.stderr.strip() == ("wordsight embed: error: $WORDSIGHT_PRECISION='fp16': must be one of fp32, bf16, "
                                "int8 or auto")
