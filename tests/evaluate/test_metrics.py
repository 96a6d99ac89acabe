"""Metrics against values worked out by hand."""
from __future__ import annotations

import numpy as np
import pytest

from wordsight.evaluate import calibration, classification_metrics, top_k_accuracy


def test_metrics_on_a_hand_made_example():
    classes = ["a", "b", "c"]
    y = ["a", "a", "b", "b", "c", "c"]
    proba = np.array([[0.9, 0.05, 0.05],   # a, right, conf 0.9
                      [0.2, 0.7, 0.1],     # a -> b, conf 0.7
                      [0.1, 0.8, 0.1],     # b, right
                      [0.1, 0.6, 0.3],     # b, right
                      [0.3, 0.1, 0.6],     # c, right
                      [0.5, 0.1, 0.4]])    # c -> a, conf 0.5
    m = classification_metrics(y, proba, classes, top_k=2)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["top2_accuracy"] == pytest.approx(6 / 6)
    assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # a: P 1/2 R 1/2; b: P 2/3 R 1; c: P 1 R 1/2
    assert m["per_class"]["a"]["precision"] == pytest.approx(0.5)
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["b"]["f1"] == pytest.approx(0.8)
    assert m["per_class"]["c"]["f1"] == pytest.approx(2 / 3)
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.2, 0.8, 0.6, 0.6, 0.4])))


def test_expected_calibration_error_by_hand():
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.95, 0.05], [0.95, 0.05], [0.6, 0.4], [0.3, 0.7]])
    cal = calibration(y, proba, n_bins=10)
    # bin (0.9,1.0]: 2 images, acc 1.0, conf 0.95; bin (0.5,0.6]: acc 0, conf 0.6; bin (0.6,0.7]: acc 1, conf 0.7
    assert cal["ece"] == pytest.approx(0.5 * 0.05 + 0.25 * 0.6 + 0.25 * 0.3)
    assert [b["count"] for b in cal["bins"]] == [1, 1, 2]


def test_top_k_and_errors():
    y = np.array([2, 0])
    p = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7]])
    assert top_k_accuracy(y, p, 1) == 0.0
    assert top_k_accuracy(y, p, 2) == 0.0
    assert top_k_accuracy(y, p, 3) == 1.0
    with pytest.raises(ValueError, match="not among the model's classes"):
        classification_metrics(["z", "a"], p, ["a", "b", "c"])
