"""Evaluation results, the few-shot protocol and the written report (HTML, JSON, PNG)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from wordsight.estimator import Classifier
from wordsight.estimator.heads import LogisticHead
from wordsight.evaluate import draw_k_shot, evaluate, few_shot_curve, headline_table, write_report


@pytest.fixture(scope="module")
def results(fashion_blocks):
    train, test = fashion_blocks
    clf = Classifier(head=LogisticHead(C=0.1)).fit(train)
    results = evaluate(clf, test, train=train, few_shot_ks=(1, 2), few_shot_draws=2, mistakes=5)
    results["_clf"] = clf
    return results


def test_evaluation_numbers(results, fashion_blocks):
    _, test = fashion_blocks
    m = results["metrics"]
    assert list(m) == ["n", "accuracy", "top5_accuracy", "macro_f1", "log_loss", "ece", "per_class", "confusion",
                       "calibration", "classes"]  # the single-label task's metrics, then its sections' data
    assert results["task"] == {"name": "single-label", "report_sections": [
        "metrics", "ablations", "few_shot", "per_class", "confusion", "calibration", "mistakes"]}
    assert m["n"] == 40 and 0.6 <= m["accuracy"] <= 1.0
    assert m["top5_accuracy"] >= m["accuracy"]
    assert np.asarray(m["confusion"]).sum() == 40
    assert np.trace(np.asarray(m["confusion"])) == round(m["accuracy"] * 40)
    assert 0 <= m["ece"] <= 1
    names = [r["name"] for r in results["ablation"]]
    assert names == ["this model (image)", "zero-shot (no training labels)", "image (image)", "text (text)",
                     "fused (concat)", "prior (prior)"]
    assert all("accuracy" in r for r in results["ablation"]), results["ablation"]
    zs = results["ablation"][1]["accuracy"]
    assert 0.125 <= zs < 0.7  # words alone: above chance (0.1; measured 0.15 on these 40), below the head
    assert results["ablation"][2]["accuracy"] == m["accuracy"]  # same model refitted
    mk = results["mistakes"]
    assert 0 < len(mk) <= 5
    assert [x["confidence"] for x in mk] == sorted((x["confidence"] for x in mk), reverse=True)
    assert all(x["true"] != x["predicted"] and x["description"].startswith(f"matches: {x['predicted']} (") for x in mk)


def test_few_shot_never_looks_at_test_labels(fashion_blocks, results):
    """Shuffling the test labels changes the scores but no choice a method made."""
    train, test = fashion_blocks
    fs = results["few_shot"]
    assert fs["ks"] == [1, 2] and set(fs["methods"]) == {"image-only", "prior"}
    assert all(len(fs["methods"]["prior"][k]["runs"]) == 2 for k in ("1", "2"))
    rng = np.random.default_rng(0)
    shuffled = test.take(np.arange(len(test)))
    shuffled.samples = [type(s)(s.path, lab) for s, lab in zip(shuffled.samples, rng.permutation(test.labels))]
    methods = {"prior": Classifier(fusion="prior", head=LogisticHead(C=0.1))}
    a = few_shot_curve(methods, train, test, ks=(2,), draws=2)
    b = few_shot_curve(methods, train, shuffled, ks=(2,), draws=2)
    assert a["methods"]["prior"]["2"]["prior_weights"] == b["methods"]["prior"]["2"]["prior_weights"]
    idx = draw_k_shot(train.labels, 2, seed=5)
    assert len(idx) == 20 and sorted(np.unique(np.asarray(train.labels)[idx], return_counts=True)[1]) == [2] * 10
    assert np.array_equal(idx, draw_k_shot(train.labels, 2, seed=5))


def test_report_files(results, tmp_path):
    results = dict(results)
    clf = results.pop("_clf")
    html = write_report(results, tmp_path / "report", model=clf, heatmaps=2)
    text = html.read_text()
    mk = results["mistakes"]
    assert [m["heatmap"] for m in mk[:2]] == ["images/mistake_00.cam.png", "images/mistake_01.cam.png"]
    assert all(m["heatmap"] is None for m in mk[2:])
    with Image.open(tmp_path / "report" / "images" / "mistake_00.cam.png") as im:
        assert im.size == (28, 28)  # the overlay has the original image's size
        assert len(set(im.convert("RGB").getdata())) > 5  # a coloured map, not a blank square
    assert "mistake_00.cam.png" in text
    for needle in ("Ablation", "Few-shot curve", "Per class", "Confusion matrix", "Calibration",
                   "Most confident mistakes", "matches: "):
        assert needle in text, needle
    for png in ("confusion.png", "reliability.png", "ablation.png", "few_shot.png", "images/mistake_00.png"):
        with Image.open(tmp_path / "report" / png) as im:
            assert im.format == "PNG" and min(im.size) >= 96, png
    data = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert data["metrics"]["accuracy"] == results["metrics"]["accuracy"]
    table = headline_table(results)
    assert "accuracy" in table and "few-shot k" in table and "zero-shot" in table


def test_report_says_how_much_the_language_contributed(fashion_blocks, tmp_path):
    """A prior-probe model's report carries the chosen prior weight and the held-out scores on the
    training images (zero-shot, image probe, the chosen mix), in metrics.json and the page."""
    from wordsight.estimator.prior_strength import summary

    train, test = fashion_blocks
    clf = Classifier(fusion="prior", head=LogisticHead(C=0.1)).fit(train)
    info = clf.state_.probe.info
    results = evaluate(clf, test, ablation=False, mistakes=0)
    lang = results["model"]["language"]
    assert lang["summary"] == summary(info) and lang["choice"] == info["choice"]
    assert lang["strength"] == info["strength"] and lang["n_train"] == len(train)
    assert set(lang["held_out"]) == {"image probe", "third-weight prior", "half-weight prior", "zero-shot"}
    html = write_report(results, tmp_path / "report", model=clf).read_text()
    assert "language: prior weight" in html
    assert json.loads((tmp_path / "report" / "metrics.json").read_text())["model"]["language"]["choice"] == info["choice"]
    assert evaluate(Classifier(head=LogisticHead(C=0.1)).fit(train), test, ablation=False)["model"]["language"] is None
