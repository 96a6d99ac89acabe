"""PriorProbe on small synthetic arrays: the zero-shot classifier at k=0, the image probe with many
labels and a useless prior, no loss against a perfect prior, exact round trips, torch parity, and
the fitted numbers against an independent computation."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.optimize import minimize, minimize_scalar
from scipy.special import log_softmax as sp_log_softmax

from wordsight.estimator.heads import make_head
from wordsight.estimator.prior_probe import PriorProbe


def blobs(n_per: int, n_classes: int = 4, d: int = 32, noise: float = 1.0, seed: int = 0):
    """L2-normalised class blobs (fixed class means per ``n_classes, d``; ``seed`` draws the points)."""
    means = np.random.default_rng(1234).normal(size=(n_classes, d))
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), n_per)
    X = means[y] + noise * rng.normal(size=(len(y), d))
    return X / np.linalg.norm(X, axis=1, keepdims=True), y


def useless_prior(n: int, n_classes: int, seed: int) -> np.ndarray:
    return sp_log_softmax(np.random.default_rng(seed).normal(size=(n, n_classes)), axis=1)


def perfect_prior(y: np.ndarray, n_classes: int, seed: int) -> np.ndarray:
    z = 0.5 * np.random.default_rng(seed).normal(size=(len(y), n_classes))
    z[np.arange(len(y)), y] += 6.0
    return sp_log_softmax(z, axis=1)


def test_no_labels_is_the_zero_shot_classifier():
    X, _ = blobs(5)
    logits = np.random.default_rng(3).normal(size=(len(X), 4)) * 3  # unnormalised zero-shot logits
    probe = PriorProbe().fit(np.zeros((0, X.shape[1])), np.zeros(0, np.int64), np.zeros((0, 4)), 4)
    np.testing.assert_allclose(probe.logits(X, logits), sp_log_softmax(logits, axis=1), atol=1e-12)
    assert probe.info["strength"] == 1.0 and not probe.arrays["W"].any()


def test_many_labels_and_a_useless_prior_give_the_image_probe():
    Xtr, ytr = blobs(100, noise=2.5, seed=1)
    Xte, yte = blobs(250, noise=2.5, seed=2)
    probe = PriorProbe().fit(Xtr, ytr, useless_prior(len(ytr), 4, 5), 4)
    acc = np.mean(probe.logits(Xte, useless_prior(len(yte), 4, 6)).argmax(1) == yte)
    image = make_head("logistic", C=0.1).fit(Xtr, ytr, 4)
    image_acc = np.mean(image.logits(Xte).argmax(1) == yte)
    assert 0.5 < image_acc < 0.98  # a task where the prior could hurt
    assert abs(acc - image_acc) <= 0.02, (acc, image_acc)
    assert probe.info["strength"] < 0.1  # the support images showed the prior is noise


def test_a_perfect_prior_with_one_shot_loses_nothing():
    Xtr, ytr = blobs(1, noise=3.0, seed=3)  # weak image features: one noisy image per class
    Xte, yte = blobs(250, noise=3.0, seed=4)
    prior_te = perfect_prior(yte, 4, 8)
    assert np.mean(prior_te.argmax(1) == yte) == 1.0
    probe = PriorProbe().fit(Xtr, ytr, perfect_prior(ytr, 4, 7), 4)
    assert np.mean(probe.logits(Xte, prior_te).argmax(1) == yte) == 1.0
    assert probe.info["calibration"] > 1.0  # the support images vouch for the prior


def test_state_round_trip_is_exact():
    Xtr, ytr = blobs(3, seed=5)
    Xte, _ = blobs(20, seed=6)
    pte = useless_prior(len(Xte), 4, 9)
    probe = PriorProbe(class_weight="balanced").fit(Xtr, ytr, useless_prior(len(ytr), 4, 10), 4)
    arrays, info = probe.state()
    back = PriorProbe.from_state({k: v.copy() for k, v in arrays.items()}, json.loads(json.dumps(info)), probe.params())
    np.testing.assert_array_equal(back.logits(Xte, pte), probe.logits(Xte, pte))
    with pytest.raises(ValueError, match="lacks W"):
        PriorProbe.from_state({"mean": arrays["mean"], "b": arrays["b"]}, info)


def test_torch_module_matches_numpy():
    import torch

    Xtr, ytr = blobs(4, seed=7)
    Xte, _ = blobs(30, seed=8)
    pte = useless_prior(len(Xte), 4, 11) * 2.0  # logits, not normalised: both paths normalise
    probe = PriorProbe().fit(Xtr, ytr, perfect_prior(ytr, 4, 12), 4)
    module = probe.to_torch()
    with torch.no_grad():
        out = module(torch.from_numpy(Xte), torch.from_numpy(pte)).numpy()
    np.testing.assert_allclose(out, probe.logits(Xte, pte), atol=1e-6, rtol=0)


def _temperature(p, y, w=None):
    """The posterior-mode temperature of log-probabilities ``p`` (1-d bounded search)."""
    w = np.ones(len(y)) if w is None else w

    def nll(T):
        return -(w * sp_log_softmax(T * p, axis=1)[np.arange(len(y)), y]).sum() + 0.5 * (T - 1.0) ** 2

    return minimize_scalar(nll, bounds=(0.0, 20.0), method="bounded", options={"xatol": 1e-10}).x


def _image_probe(X, y, w, C, n_classes):
    """The image probe written out: the heads' standardisation of ``X``, then BFGS over all d features."""
    mean = X.mean(0)
    scale = np.sqrt(np.mean((X - mean) ** 2))
    Phi = (X - mean) / scale
    Y = np.eye(n_classes)[y]
    d = X.shape[1]

    def loss(theta):
        W, b = theta[:n_classes * d].reshape(n_classes, d), theta[n_classes * d:]
        lp = sp_log_softmax(Phi @ W.T + b, axis=1)
        return -(w[:, None] * lp * Y).sum() + (W ** 2).sum() / (2 * C)

    theta = minimize(loss, np.zeros(n_classes * (d + 1)), method="BFGS", options={"gtol": 1e-10}).x
    W, b = theta[:n_classes * d].reshape(n_classes, d), theta[n_classes * d:]
    return lambda Xn: ((Xn - mean) / scale) @ W.T + b


def test_fit_matches_an_independent_computation():
    """The fitted probe against the maths written out here: the prior's temperature T by a 1-d
    search of its penalised log-loss, the held-out choice of the prior's weight by leave-one-out
    (each fold standardised on its own images, classes reweighted to their full weight, T refitted),
    then the image probe by BFGS over all d features (not the probe's reduced basis), fitted
    without the prior, which is added at the chosen weight."""
    from wordsight.estimator.prior_strength import CANDIDATES

    Xtr, ytr = blobs(2, n_classes=3, d=12, noise=1.5, seed=9)
    Xte, _ = blobs(10, n_classes=3, d=12, noise=1.5, seed=10)
    ptr = sp_log_softmax(np.random.default_rng(13).normal(size=(len(ytr), 3)) + 1.5 * np.eye(3)[ytr], axis=1)
    pte = sp_log_softmax(np.random.default_rng(14).normal(size=(len(Xte), 3)), axis=1)
    C = 0.1
    probe = PriorProbe(C=C).fit(Xtr, ytr, ptr, 3)
    T = _temperature(ptr, ytr)
    assert probe.info["calibration"] == pytest.approx(T, abs=1e-6)
    held = {name: np.zeros((6, 3)) for name in CANDIDATES}
    for i in range(6):
        tr = np.delete(np.arange(6), i)
        w = np.where(ytr[tr] == ytr[i], 2.0, 1.0)  # the held-out image's class keeps its weight
        Tf = _temperature(ptr[tr], ytr[tr], w)
        score = _image_probe(Xtr[tr], ytr[tr], w, C, 3)
        for name, m in CANDIDATES.items():
            held[name][i] = sp_log_softmax(m * Tf * ptr[i:i + 1] + score(Xtr[i:i + 1]), axis=1)[0]
    for name, z in held.items():
        t = _temperature(z, ytr)
        expected = -sp_log_softmax(t * z, axis=1)[np.arange(6), ytr].mean()
        assert probe.info["held_out"][name]["log_loss"] == pytest.approx(expected, abs=1e-4), name
        assert probe.info["held_out"][name]["accuracy"] == pytest.approx(np.mean(z.argmax(1) == ytr))
    a = CANDIDATES[probe.info["choice"]] * T
    assert probe.info["strength"] == pytest.approx(a, abs=1e-6)
    score = _image_probe(Xtr, ytr, np.ones(6), C, 3)
    expected = sp_log_softmax(a * pte + score(Xte), axis=1)
    np.testing.assert_allclose(probe.logits(Xte, pte), expected, atol=1e-5)


@pytest.mark.parametrize("class_weight", ["balanced", {0: 4.0, 2: 0.25}])
def test_class_weights_enter_the_calibration_and_the_image_probe(class_weight):
    """Imbalanced support images (7, 2, 1) with class weights: the prior's temperature and the
    image probe each minimise the *weighted* log-loss, written out here; unweighted maths differs.
    One image of class 2: no held-out choice, the prior at a third of its calibration."""
    rng = np.random.default_rng(21)
    ytr = np.repeat([0, 1, 2], [7, 2, 1])
    Xtr = rng.normal(size=(10, 6)) + 2.0 * np.eye(3, 6)[ytr]
    Xte = rng.normal(size=(8, 6))
    # a prior that is right about class 0 and wrong about the rare classes: weights change T a lot
    z = rng.normal(size=(10, 3)) * 0.3
    z[np.arange(10), np.where(ytr == 0, 0, (ytr + 1) % 3)] += 2.5
    ptr = sp_log_softmax(z, axis=1)
    pte = sp_log_softmax(rng.normal(size=(8, 3)), axis=1)
    if class_weight == "balanced":
        w = 10 / (3 * np.bincount(ytr)[ytr])
    else:
        w = np.array([class_weight.get(c, 1.0) for c in ytr])
    C = 0.1
    probe = PriorProbe(C=C, class_weight=class_weight).fit(Xtr, ytr, ptr, 3)

    def prior_nll(T, weights):
        return -(weights * sp_log_softmax(T * ptr, axis=1)[np.arange(10), ytr]).sum() + 0.5 * (T - 1.0) ** 2

    T = minimize_scalar(prior_nll, args=(w,), bounds=(0.0, 20.0), method="bounded", options={"xatol": 1e-10}).x
    T_unweighted = minimize_scalar(prior_nll, args=(np.ones(10),), bounds=(0.0, 20.0), method="bounded").x
    assert abs(T - T_unweighted) > 0.05  # the weights matter on this data
    assert probe.info["calibration"] == pytest.approx(T, abs=1e-6)
    mean = Xtr.mean(0)
    scale = np.sqrt(np.mean((Xtr - mean) ** 2))
    Phi, Y = (Xtr - mean) / scale, np.eye(3)[ytr]

    def loss(theta):
        W, b = theta[:18].reshape(3, 6), theta[18:]
        lp = sp_log_softmax(Phi @ W.T + b, axis=1)
        return -(w * (lp * Y).sum(1)).sum() + (W ** 2).sum() / (2 * C)

    theta = minimize(loss, np.zeros(21), method="BFGS", options={"gtol": 1e-10}).x
    W, b = theta[:18].reshape(3, 6), theta[18:]
    expected = sp_log_softmax(T / 3 * pte + ((Xte - mean) / scale) @ W.T + b, axis=1)
    np.testing.assert_allclose(probe.logits(Xte, pte), expected, atol=1e-5)


@pytest.mark.parametrize("args, message", [
    ((np.zeros((3, 4)), np.array([0, 1, 1]), np.zeros((3, 3)), 2), "disagree"),
    ((np.zeros((3, 4)), np.array([0, 1]), np.zeros((3, 2)), 2), "disagree"),
    ((np.zeros((2, 4)), np.array([0, 5]), np.zeros((2, 2)), 2), r"class indices in \[0, 2\)"),
    ((np.full((2, 4), np.nan), np.array([0, 1]), np.zeros((2, 2)), 2), "finite"),
    ((np.zeros(4), np.array([0]), np.zeros((1, 2)), 2), "2-d"),
])
def test_bad_input_is_refused_with_the_reason(args, message):
    with pytest.raises(ValueError, match=message):
        PriorProbe().fit(*args)


@pytest.mark.parametrize("C, message", [((0.1, 1.0), "one C"), (0.0, "C must be > 0")])
def test_c_is_one_positive_number(C, message):
    X, y = blobs(2)
    with pytest.raises(ValueError, match=message):
        PriorProbe(C=C).fit(X, y, useless_prior(len(y), 4, 0), 4)


def test_what_a_fit_reports_with_and_without_labels():
    empty = PriorProbe().fit(np.zeros((0, 5)), np.zeros(0, np.int64), np.zeros((0, 3)), 3)
    assert {k: empty.info[k] for k in ("n_classes", "n_features", "n_train", "C", "scale", "calibration",
                                       "strength")} == {"n_classes": 3, "n_features": 5, "n_train": 0, "C": 0.1,
                                                        "scale": 1.0, "calibration": 1.0, "strength": 1.0}
    assert empty.info["how"].startswith("no labelled images")
    Xtr, ytr = blobs(5, n_classes=3, d=5, seed=30)
    probe = PriorProbe(C=0.5).fit(Xtr, ytr, perfect_prior(ytr, 3, 31), 3)
    assert probe.info["n_train"] == 15 and probe.info["C"] == 0.5 and probe.info["converged"] is True
    assert probe.info["choice"] == "half-weight prior"  # a perfect prior: the held-out images say so
    assert probe.info["strength"] == pytest.approx(0.5 * probe.info["calibration"])
    assert probe.info["scale"] == pytest.approx(np.sqrt(np.mean((Xtr - Xtr.mean(0)) ** 2)))
    assert probe.info["how"].startswith("the image probe plus the calibrated zero-shot log-probabilities at half")


def test_linear_form_gives_the_same_log_probabilities():
    # (W, b, a) as the export and the torch graph read them: a * log_softmax(prior) + X @ W.T + b
    Xtr, ytr = blobs(4, seed=32)
    Xte, _ = blobs(12, seed=33)
    pte = useless_prior(len(Xte), 4, 34) * 3
    probe = PriorProbe(class_weight="balanced").fit(Xtr, ytr, perfect_prior(ytr, 4, 35), 4)
    W, b, a = probe.linear()
    assert a == probe.info["strength"]
    np.testing.assert_allclose(sp_log_softmax(a * sp_log_softmax(pte, axis=1) + Xte @ W.T + b, axis=1),
                               probe.logits(Xte, pte), atol=1e-10)


def test_objective_value_and_gradient():
    from scipy.optimize import approx_fprime

    from wordsight.estimator.prior_probe import objective

    rng = np.random.default_rng(36)
    Psi, offset = rng.normal(size=(7, 3)), rng.normal(size=(7, 4))
    y = np.array([0, 1, 2, 3, 0, 1, 1])
    Y, w, C = np.eye(4)[y], rng.uniform(0.5, 2.0, 7), 0.3
    theta = rng.normal(size=4 * 3 + 4)

    def loss(t):
        W, b = t[:12].reshape(4, 3), t[12:]
        lp = sp_log_softmax(offset + Psi @ W.T + b, axis=1)
        return -(w * lp[np.arange(7), y]).sum() + (W ** 2).sum() / (2 * C)

    f, g = objective(theta, Psi, offset, Y, w, C)
    assert f == pytest.approx(loss(theta), rel=1e-12)
    np.testing.assert_allclose(g, approx_fprime(theta, loss, 1e-7), atol=1e-5)


def test_a_constant_training_set_learns_no_residual():
    X = np.ones((6, 4))
    y = np.array([0, 1, 2, 0, 1, 2])
    probe = PriorProbe().fit(X, y, perfect_prior(y, 3, 37), 3)
    assert probe.info["scale"] == 1.0 and not probe.arrays["W"].any()
    Xte = np.random.default_rng(38).normal(size=(5, 4))
    pte = useless_prior(5, 3, 39)
    want = sp_log_softmax(probe.info["strength"] * pte + probe.arrays["b"], axis=1)
    np.testing.assert_allclose(probe.logits(Xte, pte), want, atol=1e-10)


def test_many_labels_and_a_useless_prior_are_exactly_the_image_probe():
    """Large k and a useless prior: the calibration takes the prior's weight to 0 whichever
    candidate wins, and the probe is then the image probe itself: scikit-learn's logistic
    regression with the same C on the same standardisation."""
    from sklearn.linear_model import LogisticRegression

    Xtr, ytr = blobs(100, noise=2.5, seed=1)
    Xte, _ = blobs(30, noise=2.5, seed=2)
    probe = PriorProbe(C=0.1).fit(Xtr, ytr, useless_prior(len(ytr), 4, 5), 4)
    assert probe.info["calibration"] == 0.0 and probe.info["strength"] == 0.0
    held = probe.info["held_out"]
    assert held["zero-shot"]["log_loss"] == pytest.approx(np.log(4))  # T = 0 in every fold: uniform
    assert held["image probe"] == held["third-weight prior"] == held["half-weight prior"]
    mean = Xtr.mean(0)
    scale = np.sqrt(np.mean((Xtr - mean) ** 2))
    ref = LogisticRegression(C=0.1, max_iter=5000, tol=1e-10).fit((Xtr - mean) / scale, ytr)
    expected = ref.predict_log_proba((Xte - mean) / scale)
    np.testing.assert_allclose(probe.logits(Xte, useless_prior(len(Xte), 4, 6)), expected, atol=1e-4)


def test_a_perfect_prior_and_noise_images_stay_with_the_prior():
    """Four images per class whose features are pure noise, a prior that is always right: the
    learner keeps the prior (it does not fall to the noise probe's chance level)."""
    rng = np.random.default_rng(21)
    ytr, yte = np.repeat(np.arange(4), 4), np.repeat(np.arange(4), 50)
    Xtr, Xte = rng.normal(size=(len(ytr), 32)), rng.normal(size=(len(yte), 32))
    probe = PriorProbe().fit(Xtr, ytr, perfect_prior(ytr, 4, 22), 4)
    held = probe.info["held_out"]
    assert probe.info["choice"] != "image probe" and held["image probe"]["accuracy"] < 0.5, held
    assert held[probe.info["choice"]]["accuracy"] == 1.0
    assert probe.info["held_out"]["zero-shot"]["accuracy"] == 1.0 and probe.info["zero_shot_right"] == 1.0
    assert np.mean(probe.logits(Xte, perfect_prior(yte, 4, 23)).argmax(1) == yte) == 1.0
    image = make_head("logistic", C=0.1).fit(Xtr, ytr, 4)
    assert np.mean(image.logits(Xte).argmax(1) == yte) < 0.45  # what the images alone would give


def test_the_choice_rule_folds_and_weights():
    from wordsight.estimator import prior_strength as ps

    scores = {"image probe": {"log_loss": 0.50}, "third-weight prior": {"log_loss": 0.515},
              "half-weight prior": {"log_loss": 0.6}, "zero-shot": {"log_loss": 0.1}}
    assert ps.choose(scores) == "third-weight prior"  # 0.015 nats better is within the margin
    scores["image probe"]["log_loss"] = 0.49
    assert ps.choose(scores) == "image probe"  # 0.025 better; zero-shot is never a candidate
    y = np.repeat(np.arange(3), 14)  # 42 images: folds holding one image of every class
    folds = ps.folds(y)
    assert len(folds) == 5 and all(len(np.unique(y[f])) == 3 for f in folds)
    assert sorted(np.concatenate(folds).tolist()) == list(range(42))
    assert [f.tolist() for f in ps.folds(np.repeat(np.arange(2), 20))] == [[i] for i in range(40)]
    w = ps._reweighted(np.ones(6), np.array([0, 0, 0, 1, 1, 1]), np.array([0, 1, 3, 4, 5]))
    np.testing.assert_allclose(w, [1.5, 1.5, 1, 1, 1])


def test_summary_says_what_the_language_contributed():
    from wordsight.estimator.prior_strength import summary

    Xtr, ytr = blobs(2, n_classes=3, d=12, noise=1.5, seed=9)
    ptr = sp_log_softmax(np.random.default_rng(13).normal(size=(len(ytr), 3)) + 1.5 * np.eye(3)[ytr], axis=1)
    info = PriorProbe().fit(Xtr, ytr, ptr, 3).info
    held = info["held_out"]
    line = summary(info)
    assert line.startswith(f"language: prior weight {info['strength']:.3g} ({info['choice']}; calibration T=")
    assert f"zero-shot right on {np.mean(ptr.argmax(1) == ytr):.0%} of the 6 labelled images" in line
    assert f"held-out on them: zero-shot {held['zero-shot']['accuracy']:.0%}, image probe " in line
    one = PriorProbe().fit(Xtr[::2], ytr[::2], ptr[::2], 3).info
    assert "one image of some class: no held-out images" in summary(one) and one["choice"] == "third-weight prior"


def test_images_that_separate_and_a_prior_wrong_half_the_time_go_to_the_images():
    """Four images per class far apart in feature space, a prior that is sure and wrong on every
    other image: the prior's calibration takes its weight to about 0 (every candidate is then the
    image probe, all right on the held-out images) and the learner follows the images."""
    rng = np.random.default_rng(41)
    ytr, yte = np.repeat(np.arange(2), 4), np.repeat(np.arange(2), 100)
    centres = np.zeros((2, 16))
    centres[0, 0], centres[1, 1] = 4.0, 4.0

    def images(y):
        return centres[y] + 0.3 * rng.normal(size=(len(y), 16))

    def half_wrong(y):
        z = np.zeros((len(y), 2))
        z[np.arange(len(y)), np.where(np.arange(len(y)) % 2 == 0, y, 1 - y)] = 4.0
        return sp_log_softmax(z, axis=1)

    Xtr, Xte = images(ytr), images(yte)
    probe = PriorProbe().fit(Xtr, ytr, half_wrong(ytr), 2)
    held = probe.info["held_out"]
    assert probe.info["calibration"] < 0.1 and probe.info["strength"] < 0.025, probe.info
    assert held["image probe"]["accuracy"] == 1.0 and held["zero-shot"]["accuracy"] <= 0.5, held
    assert probe.info["zero_shot_right"] == 0.5
    assert np.mean(probe.logits(Xte, half_wrong(yte)).argmax(1) == yte) == 1.0
    assert np.mean(half_wrong(yte).argmax(1) == yte) == 0.5


def test_the_image_probe_does_not_depend_on_the_prior():
    """Issue 26: the image part is the image probe fitted alone, not a residual on the prior. A
    prior right and sure on every labelled image (which left a residual near zero) and a useless
    one give the same W and b; with one image per class the prior enters at T / 3."""
    Xtr, ytr = blobs(1, n_classes=4, d=24, noise=1.0, seed=51)
    sure, noise = perfect_prior(ytr, 4, 52), useless_prior(len(ytr), 4, 53)
    a, b = PriorProbe().fit(Xtr, ytr, sure, 4), PriorProbe().fit(Xtr, ytr, noise, 4)
    np.testing.assert_allclose(a.arrays["W"], b.arrays["W"], atol=1e-8)
    np.testing.assert_allclose(a.arrays["b"], b.arrays["b"], atol=1e-8)
    assert np.abs(a.arrays["W"]).max() > 0.05  # a real image probe, not a vanishing residual
    assert a.info["choice"] == "third-weight prior"
    assert a.info["strength"] == pytest.approx(a.info["calibration"] / 3, rel=1e-12)
    image = make_head("logistic", C=0.1).fit(Xtr, ytr, 4)
    Xte, _ = blobs(20, n_classes=4, d=24, noise=1.0, seed=54)
    flat = np.zeros((len(Xte), 4))  # a uniform prior adds nothing: the image head's own probabilities
    np.testing.assert_allclose(a.logits(Xte, flat), sp_log_softmax(image.logits(Xte), axis=1), atol=2e-3)
