"""Scoring a folder with an anomaly detector on Ray: the batch callable (ScoreBatch) locally and on
an actor pool, and `predict --engine ray`, equal to ``score_samples``."""
import csv

import numpy as np
import pytest

from wordsight.cli import main
from wordsight.estimator.anomaly import AnomalyDetector
from wordsight.estimator.batch_predict import ScoreBatch, ray_predict, ray_score

pytest.importorskip("ray")


def test_detector_scores_locally_and_on_ray_equal_score_samples(ray_local, fashion_folder, images_and_bad, tmp_path):
    det = AnomalyDetector().fit(fashion_folder / "train" / "Sneaker")
    det.save(tmp_path / "det")
    images, paths = images_and_bad
    want = det.score_samples(images)
    out = ScoreBatch(tmp_path / "det")({"path": np.array(paths, dtype=object)})
    np.testing.assert_allclose(out["score"][:12], want, atol=1e-5)
    assert list(out["decision"][:12]) == ["normal" if s >= det.threshold_ else "abnormal" for s in want]
    assert out["status"][12].startswith("error: ") and np.isnan(out["score"][12])
    cols = list(ray_predict(tmp_path / "det", paths, concurrency=1, batch_size=5, batch_fn=ScoreBatch))
    assert [p for c in cols for p in c["path"]] == paths
    np.testing.assert_allclose(np.concatenate([c["score"] for c in cols])[:12], want, atol=1e-5)
    rows, failures = ray_score(tmp_path / "det", paths, concurrency=1)
    assert [r["path"] for r in rows] == images and [f.path for f in failures] == paths[12:]
    out_csv = tmp_path / "scores.csv"
    assert main(["predict", str(tmp_path / "det"), *paths, "--engine", "ray", "--concurrency", "1",
                 "--out", str(out_csv), "--quiet", "--no-cache"]) == 0  # the bad file is reported and skipped
    got = list(csv.DictReader(out_csv.open()))
    np.testing.assert_allclose([float(r["score"]) for r in got], want, atol=1e-5)
