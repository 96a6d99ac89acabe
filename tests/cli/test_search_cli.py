"""``fit --search`` and ``demo --search`` on small Fashion-MNIST folders, in process.

The demo holds training and test images side by side; a spy on the search records every image the
search reads (its input and the blocks its candidates are cross-validated on): the test would fail
if a test image reached it. The quick list's MLP stage is turned off (``STAGE_TWO_SETS = 0``) to
keep the tests to seconds; the logistic stage runs on every encoder set.
"""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import wordsight
from wordsight.cli import main
from wordsight.estimator import Classifier
from wordsight.estimator.ensemble import Ensemble


@pytest.fixture
def quick_only(monkeypatch):
    import wordsight.training.search as search

    monkeypatch.setattr(search, "STAGE_TWO_SETS", 0)


def test_fit_search_saves_the_winner_and_the_leaderboard(fashion_folder, tmp_path, quick_only, capsys):
    out = tmp_path / "model"
    code = main(["fit", str(fashion_folder / "train"), "--search", "quick", "--encoders",
                 "efficientnet-lite0,mobilenetv2", "--ensemble", "none", "--out", str(out), "--quiet"])
    assert code == 0
    table = capsys.readouterr().out
    rows = list(csv.DictReader(open(out / "leaderboard.csv")))
    # stage one: the logistic head on each encoder set (two singles and their concatenation)
    assert sorted(r["encoders"] for r in rows) == ["efficientnet-lite0", "efficientnet-lite0+mobilenetv2",
                                                   "mobilenetv2"]
    assert rows[0]["rank"] == "1" and rows[0]["model"] in table
    accs = [float(r["cv_accuracy"]) for r in rows]
    assert accs == sorted(accs, reverse=True)
    clf = Classifier.load(out)
    assert "+".join(clf.encoder_names) == rows[0]["encoders"] and clf.head_name == "logistic"
    info = json.loads((out / "search.json").read_text())
    assert info["chosen"] == "single" and info["n_images"] == 60 and info["folds"] == 3


def test_fit_search_refuses_a_bad_time_limit_in_one_line(fashion_folder, tmp_path, capsys):
    code = main(["fit", str(fashion_folder / "train"), "--search", "quick", "--time-limit", "soon",
                 "--out", str(tmp_path / "m"), "--quiet"])
    assert code != 0
    err = capsys.readouterr().err
    assert "time limit 'soon'" in err


def test_demo_search_never_reads_a_test_image_and_reports_the_leaderboard(fashion_mnist_root, tmp_path, quick_only,
                                                                          monkeypatch):
    import wordsight.training.autofit as autofit

    seen = []
    real_search = autofit.search

    def spy(blocks, **kw):
        seen.extend(s.path for s in blocks.samples)
        return real_search(blocks, **kw)

    monkeypatch.setattr(autofit, "search", spy)
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--per-class", "4", "--test-per-class", "2", "--root",
                 str(fashion_mnist_root), "--search", "quick", "--encoders", "efficientnet-lite0,mobilenetv2",
                 "--ensemble", "vote", "--max-members", "2", "--quiet"])
    assert code == 0
    data = next(out.glob("data-*"))
    train = {str(p) for p in (data / "train").rglob("*.png")}
    test = {str(p) for p in (data / "test").rglob("*.png")}
    assert len(train) == 40 and len(test) == 20
    assert set(seen) == train and not set(seen) & test
    model = wordsight.load(out / "model")
    assert isinstance(model, Ensemble) and model.kind == "vote" and len(model.members) == 2
    report = (out / "report" / "index.html").read_text()
    assert "Search: leaderboard" in report and (out / "report" / "leaderboard.png").stat().st_size > 1000
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert metrics["search"]["chosen"] == "vote" and metrics["search"]["n_images"] == 40
    # the report's accuracy is the saved ensemble's on the test images
    blocks = model.extract(str(data / "test"))
    want = np.mean(model.predict(blocks) == np.asarray(blocks.labels, dtype=object))
    assert metrics["metrics"]["accuracy"] == pytest.approx(want)
