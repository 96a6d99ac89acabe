"""The fit / evaluate / predict / demo verbs, end to end on real files."""
from __future__ import annotations

import csv
import json

from wordsight.cli import main


def test_fit_evaluate_predict(fashion_folder, tmp_path, capsys):
    model = tmp_path / "model"
    assert main(["fit", str(fashion_folder / "train"), "--out", str(model), "--C", "0.1", "--quiet"]) == 0
    assert (model / "config.json").exists() and (model / "head.safetensors").exists()
    # 6 images per class: below 16 the default fusion is the language prior (the probe)
    config = json.loads((model / "config.json").read_text())
    assert config["fusion"] == "prior" and "fusion prior" in capsys.readouterr().err
    report = tmp_path / "report"
    assert main(["evaluate", str(model), str(fashion_folder / "test"), "--report", str(report), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "macro-F1" in out
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["metrics"]["n"] == 40
    assert (report / "index.html").exists() and (report / "confusion.png").exists()

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    images = sorted((fashion_folder / "test").rglob("*.png"))[:3]
    out_csv = tmp_path / "pred.csv"
    code = main(["predict", str(model), *map(str, images), str(broken), "--top-k", "3", "--out", str(out_csv), "--quiet"])
    assert code == 0  # some images were classified; the broken one is reported
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["path"] for r in rows] == [*map(str, images), str(broken)]
    assert rows[0]["predicted"] == rows[0]["top1"] and float(rows[0]["p1"]) >= float(rows[0]["p2"]) >= float(rows[0]["p3"])
    assert rows[0]["description"].startswith(f"matches: {rows[0]['predicted']} (")
    assert rows[3]["predicted"] == "" and rows[3]["error"]
    assert main(["predict", str(model), *map(str, images), str(broken), "--strict", "--quiet",
                 "--out", str(tmp_path / "p.json")]) == 1
    data = json.loads((tmp_path / "p.json").read_text())
    assert data[0]["top_k"][0]["class"] == data[0]["predicted"] and len(data[0]["top_k"]) == 5


def test_the_default_fusion_follows_the_smallest_class():
    from wordsight.estimator.classifier import FEW_SHOT_PER_CLASS, default_fusion

    assert FEW_SHOT_PER_CLASS == 16
    assert default_fusion(["a"] * 15 + ["b"] * 100) == "prior"
    assert default_fusion(["a"] * 16 + ["b"] * 16 + [None] * 3) == "image"  # unlabelled rows not counted
    assert default_fusion(["a"] * 16 + ["b"] * 15) == "prior"
    assert default_fusion([]) == "image"


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["predict", str(tmp_path), "x.png"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"wordsight predict: error: {tmp_path / 'config.json'}: missing; {tmp_path} is not a saved wordsight model"]


def test_demo_on_a_tiny_subset(tmp_path, capsys):
    code = main(["demo", "--out", str(tmp_path / "demo"), "--per-class", "3", "--test-per-class", "2", "--C", "0.1",
                 "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "zero-shot" in out and "prior (prior)" in out
    assert (tmp_path / "demo" / "report" / "index.html").exists()
    assert (tmp_path / "demo" / "model" / "config.json").exists()
