"""`wordsight fit --task anomaly --method patchcore`, `predict --heatmaps DIR` and the report's most
abnormal images with their heatmaps, run for real; what does not apply to a detector is one line."""
from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

import wordsight
from wordsight.cli import main


@pytest.fixture(scope="module")
def pc_dir(fashion_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("pc") / "det"
    assert main(["fit", str(fashion_folder / "train" / "Trouser"), "--task", "anomaly", "--method", "patchcore",
                 "--coreset", "0.05", "--out", str(out), "--quiet"]) == 0
    return out


def test_predict_writes_a_heatmap_per_image(pc_dir, fashion_folder, tmp_path):
    det = wordsight.load(pc_dir)
    assert (det.method, det.coreset) == ("patchcore", 0.05)
    images = sorted((fashion_folder / "test" / "Bag").glob("*.png"))[:2] + [tmp_path / "broken.png"]
    images[-1].write_bytes(b"not a png")
    out = tmp_path / "scores.csv"
    rc = main(["predict", str(pc_dir), *map(str, images), "--heatmaps", str(tmp_path / "maps"), "--out", str(out),
               "--quiet"])
    assert rc == 0  # one image could not be read: reported and skipped, the others scored
    rows = list(csv.DictReader(out.open()))
    assert [r["path"] for r in rows] == [str(p) for p in images[:2]]
    np.testing.assert_allclose([float(r["score"]) for r in rows], det.score_samples(images[:2]), rtol=1e-5)
    for r in rows:
        img = Image.open(r["heatmap"])
        assert img.size == (160, 160) and img.mode == "RGB"


def test_the_report_shows_the_most_abnormal_images_with_their_heatmaps(pc_dir, fashion_folder, tmp_path):
    import json

    report = tmp_path / "report"
    assert main(["evaluate", str(pc_dir), str(fashion_folder / "test"), "--normal", "Trouser", "--report",
                 str(report), "--quiet"]) == 0
    saved = json.loads((report / "metrics.json").read_text())
    top = saved["most_abnormal"]
    assert top and all(r["heatmap"] for r in top)
    assert Image.open(report / top[0]["thumbnail"]).size == (160, 160)
    assert saved["metrics"]["auroc"] > 0.9


def test_what_does_not_apply_is_one_line(pc_dir, fashion_folder, tmp_path, capsys):
    img = str(sorted((fashion_folder / "test" / "Bag").glob("*.png"))[0])
    knn = tmp_path / "knn"
    assert main(["fit", str(fashion_folder / "train" / "Trouser"), "--task", "anomaly", "--out", str(knn),
                 "--quiet"]) == 0
    capsys.readouterr()
    for argv, message in [([str(knn), img, "--heatmaps", str(tmp_path / "m")], "needs a detector fitted with "
                           "--method patchcore, not knn"),
                          ([str(pc_dir), img, "--coverage", "0.9"], "is an anomaly detector: its threshold"),
                          ([str(pc_dir), img, "--reject-rate", "0.1"], "is an anomaly detector: its threshold")]:
        assert main(["predict", *argv, "--quiet"]) == 1
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
