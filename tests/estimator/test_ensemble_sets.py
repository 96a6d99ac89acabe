"""Prediction sets of an ensemble (issue 23): its members' out-of-fold probabilities combined as the
ensemble combines them, sets equal a numpy recomputation; `evaluate --coverage --report` writes the
sets' coverage, mean set size and coverage per class as HTML."""
from __future__ import annotations

import json
from math import ceil

import numpy as np
import pytest

from wordsight.cli import main
from wordsight.estimator import Classifier
from wordsight.estimator.ensemble import Ensemble
from wordsight.estimator.heads import LogisticHead


@pytest.fixture(scope="module")
def ensemble(fashion_folder):
    members = [Classifier(head=LogisticHead(C=c)).fit(fashion_folder / "train") for c in (0.3, 3.0)]
    return Ensemble(members, "vote", weights=[0.25, 0.75])


def test_ensemble_sets_from_the_members_out_of_fold_scores(ensemble, fashion_folder):
    cals = [m.state_.calibration for m in ensemble.members]
    P = [np.exp(c.logits - c.logits.max(1, keepdims=True)) for c in cals]
    P = [p / p.sum(1, keepdims=True) for p in P]
    mix = 0.25 * P[0] + 0.75 * P[1]
    y = cals[0].y
    q = np.sort(1 - mix[np.arange(len(y)), y])[ceil((len(y) + 1) * 0.8) - 1]
    test = fashion_folder / "test"
    Pt = ensemble.predict_proba(test)
    np.testing.assert_array_equal(ensemble.predict_set_matrix(test, 0.8), 1 - Pt <= q)
    assert ensemble.predict_set(test, 0.8)[0] == [c for c, k in zip(ensemble.classes_, 1 - Pt[0] <= q) if k]


def test_members_fitted_on_other_images_give_no_sets(fashion_folder, ensemble):
    other = Classifier(head=LogisticHead(C=1.0)).fit(fashion_folder / "test")  # 4 a class: other labels, order
    with pytest.raises(ValueError, match="fitted on different images"):
        Ensemble([ensemble.members[0], other]).calibration_scores()


def test_evaluate_coverage_report_for_an_ensemble(ensemble, fashion_folder, tmp_path, capsys):
    ensemble.save(tmp_path / "ens")
    report = tmp_path / "report"
    assert main(["evaluate", str(tmp_path / "ens"), str(fashion_folder / "test"), "--coverage", "0.9",
                 "--report", str(report), "--quiet"]) == 0
    out = capsys.readouterr().out
    m = json.loads((report / "metrics.json").read_text())
    S = ensemble.predict_set_matrix(fashion_folder / "test", 0.9)
    labels = [p.parent.name for p in sorted((fashion_folder / "test").rglob("*.png"))]
    hit = S[np.arange(len(labels)), np.searchsorted(ensemble.classes_, labels)]
    assert m["coverage"] == pytest.approx(hit.mean()) and m["mean_set_size"] == pytest.approx(S.sum(1).mean())
    assert f"{m['coverage']:.2%}" in out and "mean set size" in out
    assert len(m["coverage_per_class"]) == 10 and (report / "coverage_per_class.png").stat().st_size > 1000
    assert "Coverage per class" in (report / "index.html").read_text()
