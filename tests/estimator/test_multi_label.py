"""The multi-label task (issue 24): label sets in, independent per-label probabilities out, each
number recomputed with scikit-learn, torch or numpy directly."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, f1_score
from sklearn.preprocessing import MultiLabelBinarizer

from wordsight.estimator import Classifier
from wordsight.estimator.heads import LogisticHead, MLPHead, SVMHead
from wordsight.estimator.heads.multi_label import asymmetric_loss, constant_logit
from wordsight.estimator.tasks import MultiLabelTask, make_task
from wordsight.estimator.tasks.label_scores import best_f1_threshold, mean_average_precision, thresholds_by_f1


def scenes(seed=0, n=240, d=12, labels="abcd"):
    """Rows whose labels are independent linear events of the features."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    W = rng.normal(size=(len(labels), d))
    Y = X @ W.T + 0.5 * rng.normal(size=(n, len(labels))) > 0.8
    return X, [tuple(c for c, k in zip(labels, row) if k) for row in Y], Y.astype(int)


def test_the_task_encodes_label_sets_as_multilabelbinarizer_does():
    task = make_task("multilabel")
    assert isinstance(task, MultiLabelTask) and task.name == "multi-label" and task.label_sets
    sets = [("car", "person"), (), ("bicycle",), ("person", "car"), ["bicycle", "bicycle"], "car"]
    classes, Y = task.encode(sets)
    mlb = MultiLabelBinarizer().fit([("car", "person"), (), ("bicycle",), ("car",)])
    assert classes.tolist() == list(mlb.classes_) == ["bicycle", "car", "person"]
    np.testing.assert_array_equal(Y, mlb.transform([set(s) if not isinstance(s, str) else {s} for s in sets]))
    assert Y[1].sum() == 0  # an empty set: none of the labels


def test_the_output_is_independent_sigmoids_and_the_answer_uses_per_label_thresholds():
    z = np.array([[2.0, -1.0, 0.3], [0.0, 0.0, 0.0], [np.nan] * 3])
    from wordsight._util.numerics import log_sigmoid

    P = MultiLabelTask().output(log_sigmoid(z))
    np.testing.assert_allclose(P[:2], 1 / (1 + np.exp(-z[:2])), atol=1e-12)
    task = MultiLabelTask(thresholds=[0.9, 0.2, 0.55])
    got = task.decide(P, np.array(["a", "b", "c"]))
    assert got.tolist() == [("b", "c"), ("b",), None]  # 0.881 < 0.9 for a; 0.269 >= 0.2; 0.574 >= 0.55; NaN: None
    assert MultiLabelTask().decide(P[:1], np.array(["a", "b", "c"])).tolist() == [("a", "c")]  # 0.5 before fit


def test_metrics_are_scikit_learns_macro_ap_and_f1_at_the_thresholds():
    rng = np.random.default_rng(1)
    Y = (rng.random((50, 4)) < 0.3).astype(int)
    Y[:, 3] = 0  # a label absent from the test set has no AP
    P = np.clip(Y * 0.4 + rng.random((50, 4)) * 0.6, 0, 1)
    th = np.array([0.5, 0.6, 0.45, 0.5])
    m = {k: f(Y, P) for k, f in MultiLabelTask(th).metrics().items()}
    ap = [average_precision_score(Y[:, j], P[:, j]) for j in range(3)]
    assert m["mAP"] == pytest.approx(np.mean(ap), abs=1e-12)
    pred = (P >= th).astype(int)
    assert m["micro_f1"] == pytest.approx(f1_score(Y, pred, average="micro"), abs=1e-12)
    seen = (Y | pred).any(0)  # labels with a positive or a prediction
    assert m["macro_f1"] == pytest.approx(f1_score(Y[:, seen], pred[:, seen], average="macro"), abs=1e-12)
    assert mean_average_precision(np.zeros((3, 2)), np.ones((3, 2))) == 0.0


def test_the_f1_threshold_is_the_best_cut_between_distinct_scores():
    rng = np.random.default_rng(2)
    for _ in range(20):
        y = rng.random(40) < 0.4
        p = np.round(rng.random(40), 1)  # ties
        t, f = best_f1_threshold(y, p)
        brute = max(f1_score(y, p >= c) for c in np.unique(p))
        assert f == pytest.approx(brute, abs=1e-12)
        assert f1_score(y, p >= t) == pytest.approx(brute, abs=1e-12)
        kept = np.unique(p[p >= t])
        assert t <= kept.min() and (t > p[p < kept.min()].max() if (p < kept.min()).any() else True)
    th, reasons = thresholds_by_f1(np.array([[1, 1], [1, 0], [0, 0], [1, 0], [0, 0], [0, 0]]),
                                   np.full((6, 2), 0.3), min_positives=2)
    assert th[1] == 0.5 and list(reasons) == [1] and "1 positive and 5 negative" in reasons[1]


def test_the_logistic_head_fits_one_binary_model_per_label_as_scikit_learn_does():
    X, sets, Y = scenes()
    clf = Classifier(task="multi-label", head=LogisticHead(C=0.5), calibration=None).fit(X[:160], sets[:160])
    P = clf.predict_proba(X[160:])
    assert P.shape == (80, 4) and clf.classes_.tolist() == list("abcd")
    assert not np.allclose(P.sum(1), 1)  # independent, not a softmax
    Xs = X[:160] - X[:160].mean(0)
    scale = np.sqrt(np.mean(Xs ** 2))
    for j in range(4):
        ref = LogisticRegression(C=0.5, max_iter=1000).fit(Xs / scale, Y[:160, j])
        want = ref.predict_proba((X[160:] - X[:160].mean(0)) / scale)[:, 1]
        np.testing.assert_allclose(P[:, j], want, atol=1e-5)
    assert clf.head_.info["targets"] == "label sets"


@pytest.mark.parametrize("head", [LogisticHead(), SVMHead()], ids=["logistic", "svm"])
def test_trained_heads_rank_labels_well_and_choose_thresholds_out_of_fold(head):
    X, sets, Y = scenes()
    clf = Classifier(task="multi-label", head=head).fit(X[:160], sets[:160])
    P = clf.predict_proba(X[160:])
    assert mean_average_precision(Y[160:], P) > 0.9
    th = clf.task_.thresholds_
    assert th.shape == (4,) and np.all((th > 0) & (th < 1)) and not np.allclose(th, 0.5)
    assert clf.state_.calibration is None  # prediction sets are a single-label notion here
    pred = clf.predict(X[160:])
    assert pred.tolist() == [tuple(c for c, p, t in zip("abcd", row, th) if p >= t) for row in P]


def test_a_label_in_every_or_one_image_still_trains_with_its_reason():
    X, sets, _ = scenes(n=60)
    sets = [tuple(sorted(set(s) | {"always"})) for s in sets]
    sets[0] = sets[0] + ("once",)
    clf = Classifier(task="multi-label", head=LogisticHead(C=1.0)).fit(X, sets)
    j = clf.classes_.tolist().index("always")
    P = clf.predict_proba(X[:3])
    np.testing.assert_allclose(P[:, j], 1 / (1 + np.exp(-constant_logit(np.ones(60)))), atol=1e-12)
    assert constant_logit(np.ones(60)) == pytest.approx(np.log(60.5 / 0.5))
    reasons = clf.task_.reasons_
    assert set(reasons) == {"always", "once"} and "1 positive and 59 negative" in reasons["once"]


def test_asymmetric_loss_matches_ridnik_et_al_formula():
    import torch

    z = torch.tensor([[2.0, -1.0, 0.1], [-3.0, 0.5, 1.5]], dtype=torch.float64)
    t = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], dtype=torch.float64)
    p = 1 / (1 + np.exp(-z.numpy()))
    pm = np.maximum(p - 0.05, 0)
    want = -(t.numpy() * np.log(p) + (1 - t.numpy()) * pm ** 4 * np.log(1 - pm)).sum(1).mean()
    assert float(asymmetric_loss(z, t)) == pytest.approx(want, rel=1e-12)


def test_the_mlp_head_trains_a_sigmoid_per_label_with_the_asymmetric_loss():
    X, sets, Y = scenes()
    head = MLPHead(hidden=(32,), epochs=5, min_steps=200, lr=1e-2)
    clf = Classifier(task="multi-label", head=head, calibration=None).fit(X[:160], sets[:160])
    P = clf.predict_proba(X[160:])
    assert clf.head_.info["loss"] == "asymmetric" and P.shape == (80, 4)
    assert mean_average_precision(Y[160:], P) > 0.8
    import torch

    with torch.no_grad():
        z = clf.state_.logits_torch(torch.from_numpy(X[160:])).numpy()
    np.testing.assert_allclose(1 / (1 + np.exp(-z)), P, atol=1e-9)  # the torch form: same per-label scores


def test_saved_thresholds_load_and_predict_the_same(tmp_path):
    X, sets, _ = scenes()
    clf = Classifier(task="multi-label", head=LogisticHead(C=1.0)).fit(X, sets)
    clf.save(tmp_path / "m")
    back = Classifier.load(tmp_path / "m")
    np.testing.assert_allclose(back.task_.thresholds_, clf.task_.thresholds_, atol=0)
    np.testing.assert_allclose(back.predict_proba(X[:10]), clf.predict_proba(X[:10]), atol=1e-12)
    assert back.predict(X[:10]).tolist() == clf.predict(X[:10]).tolist()


@pytest.mark.parametrize("options,words", [
    ({"fusion": "paired"}, "takes the fusions image, text, concat and prior, not 'paired'"),
    ({"head": "knn"}, "head 'knn' does not score labels independently"),
    ({"head": "random_forest"}, "head 'random_forest' does not score labels independently"),
    ({"calibration": 0.2}, "keeps no held-out calibration split"),
])
def test_parts_that_cannot_score_labels_independently_are_refused_in_one_line(options, words):
    X, sets, _ = scenes(n=30)
    with pytest.raises(ValueError, match=words):
        Classifier(task="multi-label", **options).fit(X, sets)


def test_label_sets_given_to_the_single_label_task_say_which_task_to_use():
    X, sets, _ = scenes(n=30)
    with pytest.raises(ValueError, match="label sets .* task='multi-label'"):
        make_task("single-label").encode(sets)


def test_decision_function_gives_one_log_probability_per_label_even_for_two_labels():
    X, sets, _ = scenes(labels="ab")
    clf = Classifier(task="multi-label", head=LogisticHead(C=1.0), calibration=None).fit(X, sets)
    z = clf.decision_function(X[:5])
    assert z.shape == (5, 2)
    np.testing.assert_allclose(np.exp(z), clf.predict_proba(X[:5]), atol=1e-12)


def test_threshold_fold_heads_learn_per_image_as_the_final_head():
    """The out-of-fold probabilities behind the thresholds come from fold heads whose C is the
    final head's times n / n_fold (scikit-learn's penalty weighs the summed loss), as the
    conformal fold heads' are."""
    from sklearn.base import clone
    from sklearn.model_selection import KFold

    from wordsight.estimator.tasks.label_folds import fold_splits, out_of_fold_proba

    X, _, Y = scenes(n=120)
    head = LogisticHead(C=0.5).fit(X, Y, 4)
    splits = fold_splits(len(Y), 4)
    assert len(splits) == 4 and len(fold_splits(3, 4)) == 3  # min(max_folds, rows)
    for (a, b), (c, d) in zip(fold_splits(120, 4, None), splits):  # a seed that is not an int: seed 0
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    proba = out_of_fold_proba(head, X, Y, splits)
    for train, test in KFold(4, shuffle=True, random_state=0).split(X):
        part = clone(head).set_params(C=0.5 * 120 / len(train)).fit(X[train], Y[train], 4)
        np.testing.assert_allclose(proba[test], 1 / (1 + np.exp(-part.logits(X[test]))), atol=1e-9)
        same_c = clone(head).set_params(C=0.5).fit(X[train], Y[train], 4)
        assert np.abs(proba[test] - 1 / (1 + np.exp(-same_c.logits(X[test])))).max() > 1e-4
