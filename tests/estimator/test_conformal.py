"""Prediction sets and "unknown" (estimator.conformal) on real Fashion-MNIST images and the real
default encoder: coverage on held-out images, thresholds pinned against numpy, persistence, CLI."""
from __future__ import annotations

import json
from math import ceil, sqrt

import numpy as np
import pytest

from wordsight.cli import main
from wordsight.estimator import Classifier


@pytest.fixture(scope="module")
def fashion_300(tmp_path_factory, fashion_mnist_root):
    """30 train and 40 test images per class (the test split: images the fit never saw)."""
    from wordsight.io.datasets import write_image_folder

    root = tmp_path_factory.mktemp("fashion-conformal")
    write_image_folder(root, "train", per_class=30, root=fashion_mnist_root)
    write_image_folder(root, "test", per_class=40, root=fashion_mnist_root)
    return root


@pytest.fixture(scope="module")
def model(fashion_300):
    return Classifier().fit(fashion_300 / "train")


def _truth(clf, folder):
    labels = [p.parent.name for p in sorted((folder / "test").rglob("*.png"))]
    return np.searchsorted(clf.classes_, labels)


def test_lac_threshold_and_sets_match_a_direct_numpy_computation(model, fashion_300):
    cal = model.state_.calibration
    assert cal.folds == 10 and cal.logits.shape == (300, 10)
    P = np.exp(cal.logits - cal.logits.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    scores = np.sort(1 - P[np.arange(300), cal.y])
    q = scores[ceil(301 * 0.9) - 1]  # the 271st smallest
    from wordsight.estimator.conformal import set_threshold

    assert set_threshold(cal, 0.9, "lac") == pytest.approx(q, abs=1e-12)
    test = fashion_300 / "test"
    Pt = model.predict_proba(test)
    np.testing.assert_array_equal(model.predict_set_matrix(test, 0.9), 1 - Pt <= q)
    sets = model.predict_set(test, 0.9)
    assert [len(s) for s in sets] == (1 - Pt <= q).sum(1).tolist()
    assert set_threshold(cal, 0.999, "lac") == np.inf  # ceil(301 * 0.999) = 301 > 300: every class


@pytest.mark.parametrize("method", ["lac", "aps", "raps"])
def test_coverage_on_held_out_images_is_within_binomial_tolerance(model, fashion_300, method):
    y = _truth(model, fashion_300)
    n = len(y)
    for target in (0.8, 0.9):
        S = model.predict_set_matrix(fashion_300 / "test", target, method)
        coverage = S[np.arange(n), y].mean()
        # 3 binomial standard deviations of n test images, plus the 1/(n_cal + 1) granularity of the quantile
        tol = 3 * sqrt(target * (1 - target) / n) + 1 / 301
        assert abs(coverage - target) <= tol, (method, target, coverage)
        assert 0.5 <= S.sum(1).mean() < 10  # informative (LAC sets may be empty: a mean under 1 at 0.8)


def test_aps_and_raps_scores_and_thresholds_by_hand(model):
    from wordsight.estimator.conformal import class_scores, set_threshold

    cal = model.state_.calibration
    P = np.exp(cal.logits - cal.logits.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    for method, lam in (("aps", 0.0), ("raps", 0.01)):
        want = np.empty_like(P)
        for i, p in enumerate(P):
            mass = 0.0
            for rank, j in enumerate(sorted(range(10), key=lambda j: (-p[j], j)), start=1):
                mass += p[j]
                want[i, j] = mass + lam * max(0, rank - 1)  # RAPS: k_reg = 1
        np.testing.assert_allclose(class_scores(P, method), want, atol=1e-12)
        q = np.sort(want[np.arange(300), cal.y])[ceil(301 * 0.9) - 1]
        assert set_threshold(cal, 0.9, method) == pytest.approx(q, abs=1e-9)


def test_unknown_classes_score_higher_than_known_ones(fashion_300):
    from sklearn.metrics import roc_auc_score

    base = Classifier()
    train, test = base.extract(fashion_300 / "train"), base.extract(fashion_300 / "test")
    Xtr, Xte = base.fuse(train), base.fuse(test)
    known = sorted(set(train.labels))[:5]
    keep = np.isin(train.labels, known)
    clf = Classifier().fit(Xtr[keep], np.asarray(train.labels)[keep])
    unknown = ~np.isin(test.labels, known)
    auroc = roc_auc_score(unknown, clf.ood_score(Xte))
    assert auroc > 0.7  # measured 0.82 (knn; energy 0.80, msp 0.76: 30 images per class)
    assert roc_auc_score(unknown, clf.ood_score(Xte, "energy")) > 0.7
    pred = clf.predict(Xte, reject_rate=0.05)
    assert np.mean(pred[unknown] == "unknown") > np.mean(pred[~unknown] == "unknown")
    assert np.mean(pred[~unknown] == "unknown") < 0.2


def test_calibration_survives_save_and_load(model, fashion_300, tmp_path):
    model.save(tmp_path / "m")
    loaded = Classifier.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.state_.calibration.logits, model.state_.calibration.logits, rtol=1e-6)
    np.testing.assert_array_equal(loaded.state_.calibration.y, model.state_.calibration.y)
    assert loaded.predict_set(fashion_300 / "test", 0.8) == model.predict_set(fashion_300 / "test", 0.8)


def test_one_image_per_class_keeps_no_calibration_and_says_so():
    X = np.random.default_rng(0).normal(size=(3, 8))
    clf = Classifier().fit(X, ["a", "b", "c"])
    assert clf.state_.calibration is None
    with pytest.raises(ValueError, match="no calibration scores"):
        clf.predict_set(X)


def test_cli_predict_and_evaluate_report_sets_and_unknown(model, fashion_300, tmp_path, capsys):
    model.save(tmp_path / "m")
    out = tmp_path / "p.json"
    assert main(["predict", str(tmp_path / "m"), str(fashion_300 / "test" / "Bag"), "--coverage", "0.9",
                 "--reject-rate", "0.05", "--no-describe", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert len(rows) == 40 and all(isinstance(r["prediction_set"], list) and r["unknown"] in (True, False)
                                   for r in rows)
    assert all((r["predicted"] == "unknown") == r["unknown"] for r in rows)
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "m"), str(fashion_300 / "test"), "--coverage", "0.9"]) == 0
    text = capsys.readouterr().out
    assert "coverage" in text and "mean set size" in text and "accuracy (known classes)" in text
    assert "unknown-class AUROC" not in text


def test_cli_evaluate_on_unknown_classes_prints_their_auroc(fashion_300, tmp_path, capsys):
    import shutil

    classes = sorted(p.name for p in (fashion_300 / "train").iterdir())[:5]
    for c in classes:
        shutil.copytree(fashion_300 / "train" / c, tmp_path / "train" / c)
    Classifier().fit(tmp_path / "train").save(tmp_path / "m5")
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "m5"), str(fashion_300 / "test")]) == 0
    text = capsys.readouterr().out
    auroc = float(next(line for line in text.splitlines() if line.startswith("unknown-class AUROC")).split()[-1][:-1])
    assert auroc > 60 and "(200 of unknown classes)" in text


def test_knn_threshold_matches_leave_one_out_distances_in_numpy(model):
    from wordsight.estimator.conformal import ood_threshold

    bank = model.state_.calibration.bank.astype(np.float64)
    assert bank.shape == (300, model.n_features_in_)
    D = np.sqrt(((bank[:, None, :] - bank[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(D, np.inf)
    loo = np.sort(D.min(1))
    assert ood_threshold(model.state_.calibration, 0.05, "knn") == pytest.approx(loo[ceil(301 * 0.95) - 1], rel=1e-4)


def test_a_held_out_split_calibrates_the_head_fitted_without_it(fashion_300):
    base = Classifier()
    train, test = base.extract(fashion_300 / "train"), base.extract(fashion_300 / "test")
    X, y = base.fuse(train), np.asarray(train.labels)
    clf = Classifier(calibration=0.2).fit(X, y)
    cal = clf.state_.calibration
    assert cal.folds == 0 and len(cal.y) == 60 and np.bincount(cal.y).tolist() == [6] * 10
    held = [i for i in range(300) if not any(np.array_equal(X[i], b) for b in cal.bank)]
    assert len(held) == 60  # the bank holds the 240 rows the head was fitted on, the scores the other 60
    np.testing.assert_allclose(cal.logits, clf.state_.head.logits(X[held].astype(np.float64)), rtol=1e-9)
    Xte, yte = base.fuse(test), np.searchsorted(clf.classes_, test.labels)
    S = clf.predict_set_matrix(Xte, 0.8)
    assert abs(S[np.arange(400), yte].mean() - 0.8) <= 3 * sqrt(0.16 / 400) + 1 / 61


def test_a_held_out_split_with_one_image_per_class_is_a_clear_error():
    X = np.random.default_rng(0).normal(size=(4, 8))
    with pytest.raises(ValueError, match="needs at least 2 images of every class.*class .b. has 1"):
        Classifier(calibration=0.2).fit(X, ["a", "a", "b", "c"])


def test_a_plain_cli_fit_with_the_prior_gives_sets(photo_folder, tmp_path):
    assert main(["fit", str(photo_folder), "--out", str(tmp_path / "m")]) == 0
    clf = Classifier.load(tmp_path / "m")
    assert clf.fusion_name == "prior" and clf.state_.calibration.folds == 2
    P = clf.predict_proba(photo_folder)
    q = np.sort(1 - np.exp(clf.state_.calibration.logits)[np.arange(8), clf.state_.calibration.y])[ceil(9 * 0.8) - 1]
    np.testing.assert_array_equal(clf.predict_set_matrix(photo_folder, 0.8), 1 - P <= q)
    out = tmp_path / "p.jsonl"
    assert main(["predict", str(tmp_path / "m"), str(photo_folder), "--coverage", "0.8", "--reject-rate", "0.2",
                 "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 8 and all("prediction_set" in r and "unknown" in r for r in rows)


@pytest.mark.parametrize("C", [None, 0.01])
def test_fold_heads_learn_per_image_as_the_final_head_pinned_against_sklearn(model, fashion_300, C):
    """The out-of-fold logits kept at fit are those of scikit-learn's logistic regression on each of
    10 stratified folds with the final head's C times n / n_fold (its penalty weighs the summed loss;
    the same C on fewer images made the fold heads less confident than the final head and APS's
    sets under-cover), over the fold's own centring and one global scale."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    from wordsight.estimator.heads import LogisticHead

    X = model.featurize(fashion_300 / "train").matrix.astype(np.float64)
    y = np.asarray(model.state_.calibration.y)
    clf = Classifier(head=LogisticHead(C=C)).fit(X, model.classes_[y])
    cal, C_final = clf.state_.calibration, clf.state_.head.info["C"]
    assert cal.folds == 10 and (C is None or C_final == C)
    want = np.empty_like(cal.logits)
    for tr, te in StratifiedKFold(10, shuffle=True, random_state=0).split(X, y):
        mean = X[tr].mean(0)
        scale = np.sqrt(np.mean((X[tr] - mean) ** 2))
        lr = LogisticRegression(C=C_final * len(y) / len(tr), max_iter=1000, random_state=0)
        lr.fit((X[tr] - mean) / scale, y[tr])
        want[te] = lr.decision_function((X[te] - mean) / scale)
    np.testing.assert_allclose(cal.logits, want, atol=1e-4)  # the solver stops at its tolerance
    # the fold heads' mean confidence at the final head's own C (the old fold heads) is lower:
    old = np.empty_like(cal.logits)
    for tr, te in StratifiedKFold(10, shuffle=True, random_state=0).split(X, y):
        old[te] = LogisticHead(C=C_final).fit(X[tr], y[tr], 10).logits(X[te])
    assert clf.state_.calibration.proba.max(1).mean() > _softmax(old).max(1).mean()


def _softmax(L):
    P = np.exp(L - L.max(1, keepdims=True))
    return P / P.sum(1, keepdims=True)
