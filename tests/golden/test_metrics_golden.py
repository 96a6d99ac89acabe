"""Golden numbers for the evaluation metrics: ECE worked out by hand and by a loop, macro-F1
with a class absent from the test set (scikit-learn), top-k, log-loss and the confusion matrix."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, f1_score, log_loss, precision_recall_fscore_support

from wordsight.evaluate.metrics import calibration, classification_metrics

TOL = 1e-6


def test_ece_of_four_predictions_worked_out_by_hand():
    """15 equal-width bins. Confidences 0.95 (right), 0.7 (wrong), 0.5 (right), 0.7 (right):
    bin (0.933, 1]: |1 - 0.95| * 1/4; bin (0.667, 0.733]: |0.5 - 0.7| * 2/4; bin (0.467, 0.533]:
    |1 - 0.5| * 1/4; ECE = 0.0125 + 0.1 + 0.125 = 0.2375."""
    proba = np.array([[0.95, 0.03, 0.02], [0.7, 0.2, 0.1], [0.1, 0.5, 0.4], [0.2, 0.1, 0.7]])
    y = ["a", "b", "b", "c"]
    m = classification_metrics(y, proba, ["a", "b", "c"])
    assert m["ece"] == pytest.approx(0.2375, abs=TOL)
    assert [(b["count"], b["accuracy"], round(b["confidence"], 6)) for b in m["calibration"]["bins"]] == [
        (1, 1.0, 0.5), (2, 0.5, 0.7), (1, 1.0, 0.95)]
    lo_hi = [(round(b["lo"], 6), round(b["hi"], 6)) for b in m["calibration"]["bins"]]
    assert lo_hi == [(round(k / 15, 6), round((k + 1) / 15, 6)) for k in (7, 10, 14)]


def ece_loop(y, proba, n_bins):
    """Bin b holds confidences in (b/n, (b+1)/n] (0 goes to bin 0); ECE = sum |acc - conf| * share."""
    conf, pred = proba.max(1), proba.argmax(1)
    which = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        m = which == b
        if m.any():
            total += m.mean() * abs((pred[m] == y[m]).mean() - conf[m].mean())
    return total


@pytest.mark.parametrize("n_bins", [15, 10, 4])
def test_ece_on_random_predictions_equals_a_plain_loop(n_bins):
    rng = np.random.default_rng(n_bins)
    proba = rng.dirichlet(np.ones(5) * 0.4, size=200)
    y = rng.integers(0, 5, 200)
    got = calibration(y, proba, n_bins)
    assert got["ece"] == pytest.approx(ece_loop(y, proba, n_bins), abs=TOL)
    assert sum(b["count"] for b in got["bins"]) == 200


def test_macro_f1_averages_only_the_classes_present_in_the_test_set():
    """Protects macro-F1 with an absent class: class 'd' has no test image (but is predicted once);
    macro-F1 is the mean over a, b, c (0.5, 2/3, 1) = 0.7222, not over all four (0.5417)."""
    classes = ["a", "b", "c", "d"]
    y = np.array(["a", "a", "b", "b", "c", "c"])
    pred = np.array(["a", "d", "b", "a", "c", "c"])
    proba = np.full((6, 4), 0.1)
    proba[np.arange(6), [classes.index(p) for p in pred]] = 0.7
    m = classification_metrics(y, proba, classes)
    expected = f1_score(y, pred, labels=["a", "b", "c"], average="macro")
    assert expected == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)
    assert m["macro_f1"] == pytest.approx(expected, abs=TOL)
    assert m["macro_f1"] != pytest.approx(f1_score(y, pred, labels=classes, average="macro", zero_division=0), abs=1e-3)
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=classes, zero_division=0)
    for i, c in enumerate(classes):
        expected = {"precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]}
        assert m["per_class"][c] == pytest.approx(expected, abs=TOL)
    assert m["confusion"] == confusion_matrix(y, pred, labels=classes).tolist()
    assert m["accuracy"] == pytest.approx(4 / 6)


def test_log_loss_and_top_k_equal_scikit_learn():
    from sklearn.metrics import top_k_accuracy_score

    rng = np.random.default_rng(5)
    proba = rng.dirichlet(np.ones(6), size=50)
    y = rng.integers(0, 6, 50)
    m = classification_metrics(y, proba, list(range(6)), top_k=3)
    assert m["log_loss"] == pytest.approx(log_loss(y, proba, labels=list(range(6))), abs=TOL)
    assert m["top3_accuracy"] == pytest.approx(top_k_accuracy_score(y, proba, k=3, labels=list(range(6))), abs=TOL)
    assert m["macro_f1"] == pytest.approx(f1_score(y, proba.argmax(1), average="macro"), abs=TOL)


def test_a_class_never_predicted_has_precision_zero_not_nan():
    y = np.array(["a", "b", "c", "c"])
    pred = np.array(["a", "b", "b", "a"])  # c is never predicted
    proba = np.full((4, 3), 0.1)
    proba[np.arange(4), [["a", "b", "c"].index(p) for p in pred]] = 0.8
    m = classification_metrics(y, proba, ["a", "b", "c"])
    p, r, f, _ = precision_recall_fscore_support(y, pred, labels=["a", "b", "c"], zero_division=0)
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0), abs=TOL)
    assert [m["per_class"][c]["precision"] for c in "abc"] == pytest.approx(list(p), abs=TOL)


def test_unknown_labels_are_named_five_at_most():
    with pytest.raises(ValueError, match=r"labels \['u', 'v', 'w', 'x', 'y'\] are not among the model's "
                                         r"classes \['a', 'b'\]"):
        classification_metrics(list("uvwxyz"), np.full((6, 2), 0.5), ["a", "b"])


def test_ece_bins_are_closed_on_the_right_at_exact_edges():
    """Confidences exactly on bin edges (0.5, 0.75 with 4 bins) belong to the lower bin: (lo, hi]."""
    proba = np.array([[0.5, 0.5, 0.0], [0.75, 0.25, 0.0], [0.0, 1.0, 0.0]])
    cal = calibration(np.array([0, 1, 1]), proba, n_bins=4)
    assert [(b["lo"], b["hi"], b["count"]) for b in cal["bins"]] == [(0.25, 0.5, 1), (0.5, 0.75, 1), (0.75, 1.0, 1)]
    assert set(cal) == {"ece", "bins", "n_bins"} and cal["n_bins"] == 4
    assert cal["ece"] == pytest.approx((0.5 + 0.75 + 0.0) / 3, abs=TOL)


def test_ece_first_bin_holds_low_confidences():
    proba = np.full((2, 20), 0.05)  # 20 classes, uniform: confidence 0.05 < 1/15
    cal = calibration(np.array([0, 3]), proba, n_bins=15)
    assert [(b["lo"], b["count"]) for b in cal["bins"]] == [(0.0, 2)]
    assert cal["ece"] == pytest.approx(abs(0.5 - 0.05), abs=TOL)


def test_metrics_report_keys_and_a_class_with_one_test_image():
    y = np.array(["a", "a", "b", "c", "c"])
    pred = np.array(["a", "b", "b", "c", "a"])
    proba = np.full((5, 3), 0.1)
    proba[np.arange(5), [["a", "b", "c"].index(p) for p in pred]] = 0.8
    m = classification_metrics(y, proba, ["a", "b", "c"])
    assert set(m) == {"n", "accuracy", "top5_accuracy", "macro_f1", "log_loss", "ece", "per_class", "confusion",
                      "calibration", "classes"}
    assert m["n"] == 5 and m["classes"] == ["a", "b", "c"] and m["per_class"]["b"]["support"] == 1
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"), abs=TOL)
    with pytest.raises(ValueError, match=r"proba must be \(N, 3\), got \(15,\)"):
        classification_metrics(y, proba.ravel(), ["a", "b", "c"])
    with pytest.raises(ValueError, match="5 labels for 4 predictions"):
        classification_metrics(y, proba[:4], ["a", "b", "c"])
