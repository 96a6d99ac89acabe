"""The language prior of multi-label few-shot (issue 24): per-label independent probabilities with
the zero-shot tag log-odds as the offset and the image probe as the residual, each number against
an independent computation (scipy / scikit-learn written out here)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit, log_expit
from sklearn.linear_model import LogisticRegression

from wordsight.estimator.label_prior_probe import LabelPriorProbe, held_out_folds
from wordsight.estimator.prior_strength import RESIDUAL_CANDIDATES as CANDIDATES


def scenes(n, d=8, L=3, noise=1.0, seed=0):
    """Features whose labels are independent linear events."""
    rng = np.random.default_rng(seed)
    W = np.random.default_rng(99).normal(size=(L, d))
    X = rng.normal(size=(n, d))
    Y = (X @ W.T + noise * rng.normal(size=(n, L)) > 0.5).astype(np.int64)
    return X, Y


def penalised_bce(T, pi, y):
    """The calibration's objective written out: BCE of sigmoid(T pi) plus (T - 1)^2 / 2."""
    return -np.sum(y * log_expit(T * pi) + (1 - y) * log_expit(-T * pi)) + 0.5 * (T - 1) ** 2


def test_no_labelled_images_are_exactly_the_zero_shot_tags():
    pi = np.random.default_rng(1).normal(size=(6, 3)) * 2  # tag log-odds against "none"
    probe = LabelPriorProbe().fit(np.zeros((0, 5)), np.zeros((0, 3)), np.zeros((0, 3)), 3)
    X = np.random.default_rng(2).normal(size=(6, 5))
    np.testing.assert_allclose(probe.predict_proba(X, pi), expit(pi), atol=1e-15)
    assert probe.info["n_train"] == 0 and probe.info["how"].startswith("no labelled images")


def test_many_images_and_a_useless_prior_give_one_vs_rest_logistic_regression():
    """Large k: the prior's weight falls to 0 (its calibration T is 0 on 400 images that show it
    useless) and each label's row is scikit-learn's penalised logistic regression on the
    standardised features, to the optimiser's tolerance."""
    X, Y = scenes(400, seed=3)
    useless = np.random.default_rng(4).normal(size=Y.shape) * 3
    C = 0.1
    probe = LabelPriorProbe(C=C).fit(X, Y, useless, 3)
    assert not probe.arrays["a"].any()
    Phi = (X - X.mean(0)) / np.sqrt(np.mean((X - X.mean(0)) ** 2))
    Xte, _ = scenes(50, seed=5)
    pte = np.random.default_rng(6).normal(size=(50, 3))
    Phi_te = (Xte - X.mean(0)) / np.sqrt(np.mean((X - X.mean(0)) ** 2))
    for j in range(3):
        lr = LogisticRegression(C=C, tol=1e-10, max_iter=10000).fit(Phi, Y[:, j])
        np.testing.assert_allclose(probe.scores(Xte, pte)[:, j], lr.decision_function(Phi_te), atol=1e-4)


def test_a_right_prior_with_few_images_is_kept_and_calibrated_per_label():
    X, Y = scenes(12, noise=3.0, seed=7)  # weak image features, few images
    good = np.where(Y > 0, 2.0, -2.0) + np.random.default_rng(8).normal(size=Y.shape) * 0.3
    probe = LabelPriorProbe().fit(X, Y, good, 3)
    assert probe.info["choice"] in ("equal-weight pool", "prior-heavy pool")
    mult = CANDIDATES[probe.info["choice"]]
    for j in range(3):  # each label's temperature: the posterior mode, by a 1-d search here
        T = minimize_scalar(penalised_bce, bounds=(0, 50), method="bounded", args=(good[:, j], Y[:, j]),
                            options={"xatol": 1e-10}).x
        assert probe.arrays["a"][j] == pytest.approx(mult * T, abs=1e-5)
    assert probe.info["calibration"] > 1.0  # the labelled images vouch for the prior


def test_the_residual_is_the_penalised_fit_over_all_features():
    """Given the chosen prior weight, (W, b) minimise BCE + |W|^2 / (2C), here by BFGS over all d
    features (the probe fits in the span of the labelled images)."""
    X, Y = scenes(9, d=6, noise=1.0, seed=9)
    pi = np.random.default_rng(10).normal(size=Y.shape)
    C = 0.3
    probe = LabelPriorProbe(C=C).fit(X, Y, pi, 3)
    a = probe.arrays["a"]
    mean, scale = X.mean(0), np.sqrt(np.mean((X - X.mean(0)) ** 2))
    Phi = (X - mean) / scale

    def f(theta):
        W, b = theta[:18].reshape(3, 6), theta[18:]
        z = a * pi + Phi @ W.T + b
        return -np.sum(Y * log_expit(z) + (1 - Y) * log_expit(-z)) + 0.5 * np.sum(W * W) / C

    theta = minimize(f, np.zeros(21), method="BFGS", options={"gtol": 1e-10}).x
    Xte = np.random.default_rng(11).normal(size=(7, 6))
    pte = np.random.default_rng(12).normal(size=(7, 3))
    want = a * pte + ((Xte - mean) / scale) @ theta[:18].reshape(3, 6).T + theta[18:]
    np.testing.assert_allclose(probe.scores(Xte, pte), want, atol=1e-4)
    np.testing.assert_allclose(probe.logits(Xte, pte), log_expit(want), atol=1e-4)


def test_a_label_without_two_positives_keeps_the_equal_weight_pool():
    X, Y = scenes(10, seed=13)
    Y[:, 0] = 0
    Y[0, 0] = 1  # one positive image of label 0: nothing to hold out
    probe = LabelPriorProbe().fit(X, Y, np.zeros(Y.shape), 3)
    assert probe.info["choice"] == "equal-weight pool" and probe.info["held_out"] == {}


def test_held_out_folds_are_leave_one_out_then_five_seeded_folds():
    assert [f.tolist() for f in held_out_folds(3, 0)] == [[0], [1], [2]]
    folds = held_out_folds(100, 0)
    assert len(folds) == 5 and sorted(np.concatenate(folds).tolist()) == list(range(100))
    assert [f.tolist() for f in folds] == [f.tolist() for f in held_out_folds(100, 0)]


def test_state_round_trip_and_torch_form():
    import torch

    X, Y = scenes(14, seed=14)
    pi = np.random.default_rng(15).normal(size=Y.shape)
    probe = LabelPriorProbe().fit(X, Y, pi, 3)
    arrays, info = probe.state()
    back = LabelPriorProbe.from_state({k: v.copy() for k, v in arrays.items()}, json.loads(json.dumps(info)))
    Xte = np.random.default_rng(16).normal(size=(5, 8))
    pte = np.random.default_rng(17).normal(size=(5, 3))
    np.testing.assert_array_equal(back.logits(Xte, pte), probe.logits(Xte, pte))
    with torch.no_grad():
        z = probe.to_torch()(torch.from_numpy(Xte), torch.from_numpy(pte)).numpy()
    np.testing.assert_allclose(log_expit(z), probe.logits(Xte, pte), atol=1e-12)
    with pytest.raises(ValueError, match="lacks a"):
        LabelPriorProbe.from_state({k: v for k, v in arrays.items() if k != "a"}, info)


@pytest.mark.parametrize("args, message", [
    ((np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((3, 3)), 3), "disagree"),
    ((np.zeros((3, 2)), np.full((3, 3), 2), np.zeros((3, 3)), 3), "0/1 label-set"),
    ((np.full((3, 2), np.nan), np.zeros((3, 3)), np.zeros((3, 3)), 3), "finite"),
])
def test_bad_input_is_refused_with_the_reason(args, message):
    with pytest.raises(ValueError, match=message):
        LabelPriorProbe().fit(*args)


def test_the_fit_summary_reports_the_held_out_map():
    from wordsight.estimator.prior_strength import summary

    X, Y = scenes(30, seed=18)
    probe = LabelPriorProbe().fit(X, Y, np.random.default_rng(19).normal(size=Y.shape), 3)
    held = probe.info["held_out"]
    line = summary(probe.info)
    assert f"held-out mAP on them: zero-shot {held['zero-shot']['mAP']:.0%}" in line
    assert f"image probe {held['image probe']['mAP']:.0%}" in line and "30 labelled images" in line


def test_the_prior_fusions_out_of_fold_probabilities_refit_the_probe_per_fold_with_views():
    """What the multi-label thresholds are chosen on (PriorFusion.out_of_fold_proba): per fold, a
    probe with the fitted one's C on the other folds' rows, their augmented views' rows and the
    prior log-odds tiled over them, scoring the held-out rows; then the rows are let go."""
    from wordsight.estimator.fusion.prior import PriorFusion
    from wordsight.estimator.tasks.label_folds import fold_splits

    X, Y = scenes(40, seed=3)
    rng = np.random.default_rng(4)
    views = [X + 0.3 * rng.normal(size=X.shape)]
    prior = rng.normal(size=Y.shape)
    fusion = PriorFusion()
    fusion.probe_ = LabelPriorProbe(C=0.7).fit(np.concatenate([X, *views]), np.concatenate([Y, Y]),
                                               np.tile(prior, (2, 1)), 3)
    fusion._probe_rows = (views, prior)
    splits = fold_splits(len(Y), 5, 0)
    got = fusion.out_of_fold_proba(X, Y, splits)
    for train, test in splits:
        part = LabelPriorProbe(C=0.7).fit(np.concatenate([X[train], views[0][train]]),
                                          np.concatenate([Y[train], Y[train]]), np.tile(prior[train], (2, 1)), 3)
        np.testing.assert_allclose(got[test], part.predict_proba(X[test], prior[test]), atol=1e-12)
    no_views = LabelPriorProbe(C=0.7).fit(X[splits[0][0]], Y[splits[0][0]], prior[splits[0][0]], 3)
    assert np.abs(got[splits[0][1]] - no_views.predict_proba(X[splits[0][1]], prior[splits[0][1]])).max() > 1e-3
    assert fusion.out_of_fold_proba(X, Y, splits) is None  # the rows were let go: the head's own serve
