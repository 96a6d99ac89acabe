"""The anomaly detector on real Fashion-MNIST images and the packaged encoder: normal = Trouser."""
from __future__ import annotations

import json

import numpy as np
import pytest

import wordsight
from wordsight.estimator.anomaly import AnomalyDetector
from wordsight.estimator.tasks import OneClassTask, make_task
from wordsight.evaluate.anomaly import evaluate_detector


def _features(folder) -> np.ndarray:
    """Independent features: extract_features (cached), each row L2-normalised, by sorted path."""
    fs = wordsight.extract_features(folder, "efficientnet-lite0", quiet=True)
    order = np.argsort([str(s.path) for s in fs.samples])
    E = fs.embeddings[order].astype(np.float64)
    return E / np.linalg.norm(E, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def trouser(fashion_folder):
    return AnomalyDetector().fit(fashion_folder / "train" / "Trouser")


def test_knn_score_is_minus_the_mean_cosine_distance_to_the_k_nearest(fashion_folder, trouser):
    normal, query = _features(fashion_folder / "train" / "Trouser"), _features(fashion_folder / "test" / "Bag")
    dist = np.sort(1.0 - query @ normal.T, axis=1)[:, :2].mean(1)
    got = trouser.score_samples(sorted((fashion_folder / "test" / "Bag").glob("*.png")))
    np.testing.assert_allclose(got, -dist, atol=1e-5)
    # the threshold: the 5% quantile of the leave-one-out scores of the normal images
    D = 1.0 - normal @ normal.T
    np.fill_diagonal(D, np.inf)
    loo = -np.sort(D, axis=1)[:, :2].mean(1)
    assert trouser.threshold_ == pytest.approx(np.quantile(loo, 0.05), abs=1e-5)
    np.testing.assert_allclose(trouser.decision_function(query), -dist - trouser.threshold_, atol=1e-5)


def test_mahalanobis_matches_ledoit_wolf(fashion_folder):
    from sklearn.covariance import LedoitWolf

    normal, query = _features(fashion_folder / "train" / "Trouser"), _features(fashion_folder / "test" / "Coat")
    det = AnomalyDetector(method="mahalanobis").fit(normal)
    want = np.sqrt(LedoitWolf().fit(normal).mahalanobis(query))
    np.testing.assert_allclose(det.score_samples(query), -want, rtol=1e-4)


@pytest.mark.parametrize("method", ["knn", "mahalanobis"])
def test_trousers_are_normal_and_other_clothes_abnormal(fashion_folder, method):
    det = AnomalyDetector(method=method).fit(fashion_folder / "train" / "Trouser")
    r = evaluate_detector(det, fashion_folder / "test", ["Trouser"])
    m = r["metrics"]
    assert m["auroc"] > 0.9 and m["aupr"] > 0.95 and 0 <= m["fpr_at_95_tpr"] <= 1
    assert (m["n"], m["n_normal"], m["n_abnormal"]) == (40, 4, 36)
    assert sum(map(sum, r["confusion"]["matrix"])) == 40
    pred = det.predict(fashion_folder / "test" / "Trouser")
    assert set(pred) <= {1, -1} and (pred == 1).sum() >= 3


def test_one_class_metrics_against_sklearn_and_by_hand():
    from sklearn.metrics import roc_auc_score

    task = make_task("one-class")
    assert isinstance(task, OneClassTask)
    y, s = np.array([0, 0, 0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.9, 0.8, 0.95])
    m = {k: f(y, s) for k, f in task.metrics().items()}
    assert m["auroc"] == pytest.approx(roc_auc_score(y, s)) == pytest.approx(7 / 8)
    assert m["fpr_at_95_tpr"] == pytest.approx(0.25)  # finding both abnormal ones refuses 1 of 4 normal
    assert list(task.decide(np.array([-1.0, 2.0, np.nan]), np.array(["normal", "abnormal"]))) == ["normal", "abnormal", None]


def test_saved_detector_loads_through_wordsight_load_and_scores_the_same(fashion_folder, trouser, tmp_path):
    trouser.save(tmp_path / "det")
    det = wordsight.load(tmp_path / "det")
    assert type(det) is AnomalyDetector and not hasattr(det, "predict_proba")  # scores, not probabilities
    test = fashion_folder / "test" / "Shirt"
    np.testing.assert_allclose(det.score_samples(test), trouser.score_samples(test), atol=1e-6)
    assert det.threshold_ == trouser.threshold_ and list(det.classes_) == ["normal", "abnormal"]
    assert det.describe(test)[0].startswith(("normal (score", "abnormal (score"))


def test_too_few_normal_images_is_one_clear_error(fashion_folder):
    one = sorted((fashion_folder / "train" / "Bag").glob("*.png"))[:1]
    with pytest.raises(ValueError, match=r"at least k\+1 = 3 readable normal images are needed, got 1"):
        AnomalyDetector().fit(one)


def test_the_features_precision_is_recorded_at_fit_and_used_again(fashion_folder, trouser, tmp_path, monkeypatch):
    """A detector's normal bank and new images must be read at one precision: what the fit's
    features had is saved and passed to the extraction of a loaded detector, unless the parameter
    names another (as a classifier's, estimator.precision)."""
    from wordsight.estimator.anomaly import detector as detector_module

    assert trouser.precisions_ == {"efficientnet-lite0": "fp32"}  # the suite pins auto to fp32
    trouser.save(tmp_path / "det")
    assert json.loads((tmp_path / "det" / "config.json").read_text())["precisions"] == {"efficientnet-lite0": "fp32"}
    det = AnomalyDetector.load(tmp_path / "det")
    assert det.precisions_ == {"efficientnet-lite0": "fp32"}
    seen = []
    real = detector_module.extract_blocks
    monkeypatch.setattr(detector_module, "extract_blocks",  # records what is asked; reads at fp32 (no int8 model here)
                        lambda *a, **kw: seen.append(kw["precision"]) or real(*a, **{**kw, "precision": "fp32"}))
    test = fashion_folder / "test" / "Shirt"
    det.precisions_ = {"efficientnet-lite0": "int8"}  # as if the fit's features had been int8
    det.extract(test)
    det.set_params(precision="fp32").extract(test)
    assert seen == [{"efficientnet-lite0": "int8"}, {"efficientnet-lite0": "fp32"}]
