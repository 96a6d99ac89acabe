"""Heads on plain arrays: scikit-learn conformance, numpy re-implementations, round trips."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.utils.estimator_checks import check_estimator

from wordsight._util.numerics import log_softmax
from wordsight.estimator import Classifier, make_head
from wordsight.estimator.heads import HEADS, head_taking


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600].astype(np.float64), y[:600], X[600:900].astype(np.float64), y[600:900]


@pytest.mark.parametrize("head, params", [("logistic", None), ("knn", None), ("svm", None),
                                          ("random_forest", {"n_estimators": 10})])
def test_check_estimator_on_precomputed_features(head, params):
    """scikit-learn's own conformance checks, on feature-matrix input."""
    results = check_estimator(Classifier(head=head_taking(head, C=1.0, **(params or {}))), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert failed == []
    assert sum(r["status"] == "passed" for r in results) >= 45


@pytest.mark.parametrize("head", HEADS)
def test_every_head_learns_digits_and_survives_save_load(head, digits, tmp_path):
    Xtr, ytr, Xte, yte = digits
    clf = Classifier(head=head_taking(head, **({"n_estimators": 50} if head == "random_forest" else {}))).fit(Xtr, ytr)
    acc = clf.score(Xte, yte)
    assert acc > 0.85, (head, acc)
    clf.save(tmp_path / head)
    back = Classifier.load(tmp_path / head)
    np.testing.assert_array_equal(back.predict_proba(Xte), clf.predict_proba(Xte))
    assert back.classes_.tolist() == list(range(10))
    assert sorted(p.name for p in (tmp_path / head).iterdir()) == ["calibration.safetensors", "config.json",
                                                                     "head.safetensors"]


def test_random_forest_in_numpy_matches_scikit_learn(digits):
    from sklearn.ensemble import RandomForestClassifier

    Xtr, ytr, Xte, _ = digits
    head = make_head("random_forest", n_estimators=20, random_state=3).fit(Xtr, ytr, 10)
    ref = RandomForestClassifier(n_estimators=20, random_state=3, n_jobs=2).fit(Xtr, ytr)
    np.testing.assert_allclose(head.predict_proba(Xte), ref.predict_proba(Xte), atol=1e-6)


def test_logistic_cv_picks_c_from_grid_and_linear_form_reproduces_logits(digits):
    Xtr, ytr, Xte, _ = digits
    head = make_head("logistic", random_state=0).fit(Xtr, ytr, 10)
    assert head.info["C"] in [float(c) for c in np.logspace(-4, 2, 7)]
    assert len(head.info["cv_accuracy"]) == 7
    W, b = head.linear()
    np.testing.assert_allclose(Xte @ W.T + b, head.logits(Xte), rtol=1e-9, atol=1e-8)


def test_class_missing_from_training_gets_no_probability():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    y = np.repeat([0, 2], 20)
    X[y == 2] += 3
    for name in HEADS:
        head = head_taking(name, C=1.0).fit(X, y, 3)
        p = head.predict_proba(X)
        assert p.shape == (40, 3)
        assert p[:, 1].max() < 1e-3, name
        assert np.mean(p.argmax(1) == y) > 0.9, name


def test_seeded_fits_are_reproducible(digits):
    Xtr, ytr, Xte, _ = digits
    for head in ("mlp", "random_forest", "logistic"):
        a = Classifier(head=head, random_state=7).fit(Xtr, ytr).predict_proba(Xte)
        b = Classifier(head=head, random_state=7).fit(Xtr, ytr).predict_proba(Xte)
        np.testing.assert_array_equal(a, b)


def test_log_softmax_is_normalised():
    z = np.array([[1000.0, 0.0, -5.0], [1.0, 2.0, 3.0]])
    np.testing.assert_allclose(np.exp(log_softmax(z)).sum(1), [1.0, 1.0])


def test_bad_parameters_say_what_was_wrong():
    X, y = np.eye(4), [0, 1, 0, 1]
    with pytest.raises(ValueError, match="'head' parameter of Classifier must be a str among"):
        Classifier(head="tree").fit(X, y)
    with pytest.raises(ValueError, match="'fusion' parameter .* Got 'early'"):
        Classifier(fusion="early").fit(X, y)
    with pytest.raises(ValueError, match="needs images or FeatureBlocks"):
        Classifier(fusion="concat").fit(X, y)
    with pytest.raises(ValueError, match="'augment' parameter .* Got -1"):
        Classifier(augment=-1).fit(X, y)
