"""`wordsight fit --task anomaly`, `predict` and `evaluate --normal` of a detector, run for real."""
from __future__ import annotations

import json
import shutil

import numpy as np

import wordsight
from wordsight.cli import main
from wordsight.evaluate.anomaly import evaluate_detector


def test_fit_predict_evaluate_a_detector(fashion_folder, tmp_path, capsys):
    normal = tmp_path / "normal"  # an ImageFolder whose classes are all normal: footwear
    for c in ("Sandal", "Sneaker"):
        shutil.copytree(fashion_folder / "train" / c, normal / c)
    det_dir = tmp_path / "det"
    assert main(["fit", str(normal), "--task", "anomaly", "--k", "3", "--reject-rate", "0.1", "--out", str(det_dir),
                 "--quiet"]) == 0
    assert "on 12 normal images of efficientnet-lite0" in capsys.readouterr().err
    det = wordsight.load(det_dir)
    assert (det.method, det.k, det.reject_rate, det.n_train_) == ("knn", 3, 0.1, 12)

    test = fashion_folder / "test"
    assert main(["predict", str(det_dir), str(test / "Bag"), str(test / "Sneaker"), "--quiet"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    assert len(rows) == 8 and {r[2] for r in rows} <= {"normal", "abnormal"}
    want = det.score_samples([r[0] for r in rows])
    np.testing.assert_allclose([float(r[1]) for r in rows], want, atol=1e-4)
    assert [r[2] for r in rows] == ["normal" if s >= det.threshold_ else "abnormal" for s in want]

    report = tmp_path / "report"
    assert main(["evaluate", str(det_dir), str(test), "--normal", "Sandal,Sneaker", "--report", str(report),
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    expected = evaluate_detector(det, test, ["Sandal", "Sneaker"])["metrics"]
    assert f"{expected['auroc']:.4f}" in out and "FPR at 95% TPR" in out and "said abnormal" in out
    assert expected["auroc"] > 0.8 and (expected["n_normal"], expected["n_abnormal"]) == (8, 32)
    saved = json.loads((report / "metrics.json").read_text())
    assert saved["metrics"]["auroc"] == expected["auroc"] and len(saved["most_abnormal"]) == 12
    assert all((report / n).stat().st_size > 1000 for n in ("score_histogram.png", "roc.png", "index.html"))
