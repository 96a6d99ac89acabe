"""Golden numbers for the few-shot curve: every draw's test accuracy recomputed with numpy and
scikit-learn (own k-shot draws, own L2-normalisation, scaling and logistic regression)."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from wordsight.estimator import Classifier
from wordsight.estimator.feature_blocks import FeatureBlocks
from wordsight.estimator.heads import LogisticHead
from wordsight.evaluate import draw_k_shot, few_shot_curve
from wordsight.io.sources import Sample

ENC = "efficientnet-lite0"
NAMES = ["cat", "dog", "emu"]


def blocks_of(X, y, prefix):
    return FeatureBlocks([Sample(f"{prefix}{i}.png", NAMES[c]) for i, c in enumerate(y)], {ENC: X.astype(np.float32)})


@pytest.fixture(scope="module")
def pool_and_test():
    rng = np.random.default_rng(42)
    centres = rng.normal(size=(3, 8))
    y_pool, y_test = np.repeat([0, 1, 2], 10), np.repeat([0, 1, 2], 12)
    X_pool = centres[y_pool] + rng.normal(size=(30, 8)) * 1.1
    X_test = centres[y_test] + rng.normal(size=(36, 8)) * 1.1
    return X_pool, y_pool, X_test, y_test


def reference_draw(y, k, seed):
    """k indices per class in sorted class order, each class's indices permuted by one generator."""
    rng = np.random.default_rng(seed)
    picks = [rng.permutation(np.flatnonzero(y == c))[:k] for c in sorted(set(y.tolist()))]
    return np.sort(np.concatenate(picks))


def reference_accuracy(X_pool, y_pool, X_test, y_test, idx, C):
    def l2n(v):
        v = v.astype(np.float32)
        return (v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)).astype(np.float64)

    A, T = l2n(X_pool[idx]), l2n(X_test)
    mean = A.mean(0)
    scale = np.sqrt(np.mean((A - mean) ** 2))
    model = LogisticRegression(C=C, max_iter=1000, random_state=0).fit((A - mean) / scale, y_pool[idx])
    return float(np.mean(model.predict((T - mean) / scale) == y_test))


def test_few_shot_curve_per_draw_accuracies_and_distinct_draws(pool_and_test):
    """Protects the few-shot protocol's draws: each draw has its own seed (seed + 1000 d + k), so
    the draws differ and the curve's spread is real."""
    X_pool, y_pool, X_test, y_test = pool_and_test
    pool, test = blocks_of(X_pool, y_pool, "p"), blocks_of(X_test, y_test, "t")
    lines = []
    out = few_shot_curve({"logistic": Classifier(head=LogisticHead(C=1.0))}, pool, test, ks=(1, 3), draws=4, seed=5, log=lines.append)
    assert out["ks"] == [1, 3] and out["draws"] == 4 and out["n_test"] == 36 and out["seed"] == 5
    assert len(lines) == 8
    first = out["methods"]["logistic"]["1"]["runs"][0]
    assert lines[0].startswith(f"logistic k=1 draw=0: {first:.4f} (prior weight 0.0, ") and lines[0].endswith("s)")
    for k in (1, 3):
        draws = [reference_draw(y_pool, k, 5 + 1000 * d + k) for d in range(4)]
        assert len({tuple(d) for d in draws}) == 4  # the draws differ
        for d, idx in enumerate(draws):
            np.testing.assert_array_equal(draw_k_shot(pool.labels, k, 5 + 1000 * d + k), idx)
        expected = [reference_accuracy(X_pool, y_pool, X_test, y_test, idx, 1.0) for idx in draws]
        res = out["methods"]["logistic"][str(k)]
        np.testing.assert_allclose(res["runs"], expected, atol=1e-6)
        assert res["mean"] == pytest.approx(np.mean(expected), abs=1e-6)
        assert res["std"] == pytest.approx(np.std(expected), abs=1e-6)
        assert res["std"] > 0  # error bars that are not zero
        assert res["prior_weights"] == [0.0] * 4


def test_draw_k_shot_takes_every_image_of_a_small_class():
    labels = ["a"] * 5 + ["b"] * 2
    idx = draw_k_shot(labels, 3, seed=0)
    assert len(idx) == 5 and set(idx[idx >= 5]) == {5, 6}
    assert not np.array_equal(draw_k_shot(labels, 3, seed=0), draw_k_shot(labels, 3, seed=1)) or \
        not np.array_equal(draw_k_shot(labels, 3, seed=1), draw_k_shot(labels, 3, seed=2))
