"""The language prior serves multi-label few-shot (issue 24) on Fashion-MNIST mosaics and the real
EfficientNet-Lite0: the prior is the zero-shot tags ("X" against "none"), the per-label probe
reads it, predictions, the saved folder and the CLI default agree."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy.special import expit

import wordsight
from wordsight.cli import main
from wordsight.estimator import Classifier
from wordsight.estimator.classifier import default_fusion
from wordsight.estimator.label_prior_probe import LabelPriorProbe
from wordsight.io.sources import Source, open_source
from wordsight.zeroshot.tags import TagPrior, tag_log_odds, tag_pipeline

ENC = ("efficientnet-lite0",)


@pytest.fixture(scope="module")
def few(mosaic_manifests):
    """16 training mosaics (a few positives per label) and the 40 test mosaics."""
    train = open_source(mosaic_manifests[0])
    return Source(train.samples[:16], []), open_source(mosaic_manifests[1])


@pytest.fixture(scope="module")
def tagger(few):
    return Classifier(task="multi-label", fusion="prior", encoders=ENC).fit(few[0])


def test_the_prior_is_the_zero_shot_tags_and_the_probe_reads_it(tagger, few):
    train, test = few
    prior = tagger.prior_
    assert isinstance(prior, TagPrior) and prior.classes_.tolist() == tagger.classes_.tolist()
    assert isinstance(tagger.state_.probe, LabelPriorProbe)
    # the prior: the zero-shot tag pipeline of `wordsight zeroshot --multilabel`, centred on the training images
    pipe = tag_pipeline([str(c) for c in tagger.classes_], center="yes", view=prior.view_, quiet=True).fit(train)
    F = tagger.featurize(test)
    np.testing.assert_allclose(F.prior_logits, tag_log_odds(pipe, pipe.reading(pipe.read(test))), atol=1e-6)
    # predict_proba: each label's sigmoid of a * prior + residual, independent of the others
    probe = tagger.state_.probe
    want = expit(probe.arrays["a"] * F.prior_logits
                 + ((F.matrix - probe.arrays["mean"]) / probe.info["scale"]) @ probe.arrays["W"].T + probe.arrays["b"])
    np.testing.assert_allclose(tagger.predict_proba(test), want, atol=1e-6)


def test_the_thresholds_come_from_the_probes_out_of_fold_probabilities(tagger, few):
    """Thresholds are chosen on what predict_proba computes: per fold a label probe (the fitted
    one's C) on the other folds' rows with their prior log-odds, not the image head alone."""
    from sklearn.model_selection import KFold

    from wordsight.estimator.tasks.label_scores import thresholds_by_f1
    from wordsight.estimator.tasks.multi_label import MIN_POSITIVES, THRESHOLD_FOLDS

    train = few[0]
    F = tagger.featurize(train)
    Y = np.array([[c in set(lab) for c in tagger.classes_] for lab in train.labels], np.int64)
    C = tagger.state_.probe.info["C"]
    proba = np.empty(Y.shape)
    for fit_rows, held in KFold(THRESHOLD_FOLDS, shuffle=True, random_state=0).split(Y):
        part = LabelPriorProbe(C=C).fit(F.matrix[fit_rows], Y[fit_rows], F.prior_logits[fit_rows], Y.shape[1])
        proba[held] = part.predict_proba(F.matrix[held], F.prior_logits[held])
    want, reasons = thresholds_by_f1(Y, proba, MIN_POSITIVES)
    assert len(reasons) < Y.shape[1]  # some label has a threshold of its own to check
    np.testing.assert_allclose(tagger.task_.thresholds_, want, atol=1e-6)
    # the image head's out-of-fold probabilities give other thresholds (what the fix changed)
    from wordsight.estimator.tasks.label_folds import fold_splits, out_of_fold_proba

    head_th, _ = thresholds_by_f1(Y, out_of_fold_proba(tagger.head_, F.matrix, Y, fold_splits(len(Y), THRESHOLD_FOLDS)),
                                  MIN_POSITIVES)
    assert np.abs(head_th - want).max() > 1e-3


def test_the_saved_tagger_predicts_the_same_and_refuses_a_mismatched_probe(tagger, few, tmp_path):
    tagger.save(tmp_path / "m")
    back = wordsight.load(tmp_path / "m")
    assert isinstance(back.prior_, TagPrior) and isinstance(back.state_.probe, LabelPriorProbe)
    np.testing.assert_array_equal(back.predict_proba(few[1]), tagger.predict_proba(few[1]))
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["prior"]["probe"]["info"]["targets"] == "label sets"


def test_the_onnx_export_of_a_tagger_with_the_prior_gives_predict_proba(tagger, few, tmp_path):
    pytest.importorskip("onnxruntime")
    import importlib.util

    from wordsight.export import export_onnx

    tagger.save(tmp_path / "m")
    out = export_onnx(tmp_path / "m", tmp_path / "onnx", text=False)
    module = importlib.util.spec_from_file_location("runner_ml_prior", out / "runner.py")
    runner = importlib.util.module_from_spec(module)
    module.loader.exec_module(runner)
    paths = few[1].paths[:6]
    np.testing.assert_allclose(runner.Pipeline(out).predict_proba(paths), tagger.predict_proba(paths), atol=1e-5)


def test_multi_label_prior_takes_the_logistic_head_only():
    X = np.zeros((4, 3))
    with pytest.raises(ValueError, match="per-label prior probe: fusion 'prior' with weight 'auto' and the logistic"):
        Classifier(task="multi-label", fusion="prior", head="svm").fit(X, [("a",), ("b",), ("a", "b"), ()])


def test_few_positives_per_label_default_to_the_prior_as_single_label_does():
    assert default_fusion([("a", "b"), ("a",), ()] * 5) == "prior"  # 10 and 5 positives
    assert default_fusion([("a", "b")] * 16) == "image"
    assert default_fusion(["a"] * 15 + ["b"] * 16) == "prior" and default_fusion(["a", "b"] * 16) == "image"


def test_cli_fit_of_few_label_sets_uses_the_prior(mosaic_manifests, tmp_path):
    rows = list(csv.DictReader(open(mosaic_manifests[0])))[:12]
    manifest = tmp_path / "few.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "labels"])
        for r in rows:
            w.writerow([str(mosaic_manifests[0].parent / r["path"]), r["labels"]])
    assert main(["fit", str(manifest), "--encoders", "efficientnet-lite0", "--out", str(tmp_path / "m"), "--quiet"]) == 0
    clf = wordsight.load(tmp_path / "m")
    assert clf.task_.name == "multi-label" and clf.fusion_name == "prior"
    assert main(["fit", str(manifest), "--encoders", "efficientnet-lite0", "--head", "svm", "--out",
                 str(tmp_path / "s"), "--quiet"]) == 0
    assert wordsight.load(tmp_path / "s").fusion_name == "image"  # the prior probe is the logistic head's
