"""The evaluation and the report ask the model's task: a task registered in a test scores with its
own metric and gets only the report sections it lists (files and HTML)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from wordsight.estimator import Classifier
from wordsight.estimator.ensemble import Ensemble
from wordsight.estimator.heads import LogisticHead
from wordsight.estimator.tasks import TASK_CLASSES, SingleLabelTask
from wordsight.evaluate import evaluate, headline_table, write_report


def brier(y, proba):
    """Multi-class Brier score: mean squared distance of the probabilities to the one-hot target."""
    onehot = np.eye(proba.shape[1])[y]
    return float(((proba - onehot) ** 2).sum(1).mean())


class BrierTask(SingleLabelTask):
    """Single-label targets and outputs, scored by the Brier score alone; a short report."""

    name = "toy-brier"
    report_sections = ("metrics", "confusion")

    def metrics(self):
        return {"brier": brier}


class UnknownSectionTask(SingleLabelTask):
    name = "toy-unknown-section"
    report_sections = ("metrics", "leaderboard")


@pytest.fixture(scope="module")
def brier_model(fashion_blocks):
    train, _ = fashion_blocks
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(TASK_CLASSES, BrierTask.name, BrierTask)
        clf = Classifier(task="toy-brier", head=LogisticHead(C=0.1)).fit(train)
        assert clf.task_ == BrierTask()
        yield clf


def test_evaluate_returns_exactly_the_tasks_metrics_and_sections(brier_model, fashion_blocks):
    train, test = fashion_blocks
    results = evaluate(brier_model, test, train=train, few_shot_ks=(1,), few_shot_draws=1, mistakes=5)
    m = results["metrics"]
    assert list(m) == ["n", "brier", "confusion", "classes"]
    assert results["task"] == {"name": "toy-brier", "report_sections": ["metrics", "confusion"]}
    assert not {"ablation", "few_shot", "mistakes"} & set(results)  # not listed: not computed
    # the Brier score by a plain loop over the images and classes
    proba = brier_model.predict_proba(test)
    classes = brier_model.classes_.tolist()
    expected = np.mean([sum((p[j] - (c == label)) ** 2 for j, c in enumerate(classes))
                        for p, label in zip(proba, test.labels)])
    assert m["brier"] == pytest.approx(expected, abs=1e-12)
    assert 0.0 < m["brier"] < 1.0
    assert np.asarray(m["confusion"]).sum() == m["n"] == 40


def test_the_report_writes_only_the_listed_sections(brier_model, fashion_blocks, tmp_path):
    _, test = fashion_blocks
    results = evaluate(brier_model, test)
    html = write_report(results, tmp_path / "report", model=brier_model).read_text()
    written = sorted(p.relative_to(tmp_path / "report").as_posix() for p in (tmp_path / "report").rglob("*"))
    assert written == ["confusion.png", "images", "index.html", "metrics.json"]
    assert f"<div class='card'>brier<b>{results['metrics']['brier']:.3f}</b></div>" in html
    assert "Confusion matrix" in html and "confusion.png" in html
    for absent in ("accuracy", "Ablation", "Few-shot", "Per class", "Calibration", "reliability.png",
                   "Most confident mistakes"):
        assert absent not in html, absent
    data = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert data["metrics"]["brier"] == results["metrics"]["brier"] and "per_class" not in data["metrics"]
    table = headline_table(results).splitlines()
    assert table == [f"{'metric':<28}{'value':>10}", f"{'brier':<28}{results['metrics']['brier']:>10.4f}",
                     f"{'test images':<28}{40:>10d}"]


def test_an_ensemble_is_scored_by_its_members_task(brier_model, fashion_blocks):
    _, test = fashion_blocks
    ens = Ensemble([brier_model, brier_model])
    assert ens.task_ == BrierTask()
    results = evaluate(ens, test)
    assert list(results["metrics"]) == ["n", "brier", "confusion", "classes"]
    assert results["metrics"]["brier"] == pytest.approx(evaluate(brier_model, test)["metrics"]["brier"], abs=1e-12)


def test_a_task_listing_an_unknown_section_is_refused(fashion_blocks):
    train, test = fashion_blocks
    clf = Classifier(task=UnknownSectionTask(), head=LogisticHead(C=0.1)).fit(train)
    with pytest.raises(ValueError, match=r"task 'toy-unknown-section' lists unknown report section\(s\) "
                                         r"\['leaderboard'\]: choose from metrics, ablations, few_shot"):
        evaluate(clf, test)
