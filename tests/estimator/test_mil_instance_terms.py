"""The mil head's parts per row (``MILHead.instance_terms``, what explanations paint): each
instance's score, its pooling weight, the pooled and the global term, written out in numpy from
the head's arrays for the linear and the hidden scorer, log-sum-exp and max pooling."""
from __future__ import annotations

import numpy as np
import pytest

from wordsight.estimator.heads import MILHead

from .test_mil_head import START, D, K, L, bags
from .test_mil_hidden import made


def linear(pool: str, seed: int = 0) -> MILHead:
    rng = np.random.default_rng(seed)
    head = MILHead(pool=pool, bag=[START, K, D])
    head.arrays = {"W": rng.normal(size=(L, D)), "V": rng.normal(size=(L, START)), "b": rng.normal(size=L)}
    head.info = {"bag": [START, K, D], "pool": pool}
    return head


def written_out(head, X):
    """(scores (N, K, L), weights, pooled, global) instance by instance, label by label."""
    a = head.arrays
    N = len(X)
    s = np.zeros((N, K, L))
    for n in range(N):
        for i in range(K):
            t = X[n, START + i * D:START + (i + 1) * D]
            if "W" in a:
                s[n, i] = a["W"] @ t
            else:
                s[n, i] = a["W2"] @ np.maximum(a["W1"] @ t + a["c1"], 0)
    if head.info["pool"] == "lse":
        e = np.exp(s - s.max(1, keepdims=True))
        weights = e / e.sum(1, keepdims=True)
        pooled = np.log(np.exp(s).sum(1))
    else:
        weights = np.zeros_like(s)
        for n in range(N):
            for lab in range(L):
                weights[n, np.argmax(s[n, :, lab]), lab] = 1.0
        pooled = s.max(1)
    return s, weights, pooled, X[:, :START] @ a["V"].T


@pytest.mark.parametrize("make", [linear, made], ids=["linear", "hidden"])
@pytest.mark.parametrize("pool", ["lse", "max"])
def test_instance_terms_are_the_written_out_parts_and_sum_to_the_logits(make, pool):
    X, _ = bags(12, 3)
    head = make(pool)
    t = head.instance_terms(X)
    s, w, pooled, g = written_out(head, X)
    for key, want in (("scores", s), ("weights", w), ("pooled", pooled), ("global", g)):
        np.testing.assert_allclose(t[key], want, rtol=1e-10, atol=1e-10, err_msg=key)
    np.testing.assert_allclose(t["bias"], head.arrays["b"])
    np.testing.assert_allclose(t["pooled"] + t["global"] + t["bias"], head.logits(X), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(t["weights"].sum(1), 1.0)


def test_max_pooling_weighs_the_first_of_tied_instances():
    head = linear("max")
    X = np.zeros((1, START + K * D))
    X[0, START:] = np.tile(np.arange(1.0, D + 1), K)  # every instance alike: tied scores
    w = head.instance_terms(X)["weights"][0]
    np.testing.assert_array_equal(w[0], np.ones(L))
    assert w[1:].sum() == 0


def test_rows_of_another_width_are_refused_and_a_bagless_head_has_no_instance_terms():
    with pytest.raises(ValueError, match=r"bag \[3, 4, 5\] \(\[start, instances, width\]\) does not fit rows of 22"):
        linear("lse").instance_terms(np.zeros((2, 22)))
    with pytest.raises(ValueError, match="rows of 24 features, but this mil head reads 23"):
        linear("lse").instance_terms(np.zeros((2, 24)))
    rng = np.random.default_rng(0)
    head = MILHead(lam=1e-3).fit(rng.normal(size=(20, 4)), (rng.random((20, 2)) < 0.5).astype(int), 2)
    assert head.instance_terms(rng.normal(size=(3, 4))) is None


def test_a_loaded_heads_saved_pool_decides_not_its_parameter():
    """As ``logits``: the pool the head was fitted with (``info``) is the one its terms use."""
    X, _ = bags(6, 4)
    head = linear("max")
    head.set_params(pool="lse")
    t = head.instance_terms(X)
    np.testing.assert_allclose(t["pooled"], written_out(linear("max"), X)[2], rtol=1e-12)
    np.testing.assert_allclose(t["pooled"] + t["global"] + t["bias"], head.logits(X), rtol=1e-12)
