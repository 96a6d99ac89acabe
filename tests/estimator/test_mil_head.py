"""The multiple-instance head (issue 24) on arrays: its scores against the pooled formula written
out in numpy, its fit against the objective's gradient written out in numpy, the penalty chosen by
cross-validated mAP, single-label use, torch / ONNX forms and a save/load round trip."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import expit, logsumexp, softmax

from wordsight.estimator import Classifier
from wordsight.estimator.heads import MILHead
from wordsight.estimator.heads.mil_fit import LAM_GRID

K, D, G, L = 4, 5, 3, 3  # instances per bag, their width, global columns, labels
START = G  # the bag after the global block: [global | tile 0 | ... | tile 3]


def bags(n: int, seed: int):
    """Rows [global (G) | K instances of D]; label l present iff some instance points along e_l."""
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, L)) < 0.4).astype(np.int64)
    T = rng.normal(size=(n, K, D)) * 0.5
    for i, j in zip(*np.nonzero(Y)):
        T[i, rng.integers(K), j] += 2.5
    Gl = rng.normal(size=(n, G)) + 0.3 * Y[:, :G]  # a weak global hint
    return np.concatenate([Gl, T.reshape(n, -1)], 1), Y


def parts(head):
    a = head.arrays
    return a["W"], a["V"], a["b"]


def written_out(X, W, V, b, pool):
    """The module doc's formula, in numpy: pool_i(T_i . W_l) + G . V_l + b_l."""
    T = X[:, START:].reshape(len(X), K, D)
    s = np.stack([T[:, i, :] @ W.T for i in range(K)], 1)  # (N, K, L)
    pooled = logsumexp(s, axis=1) if pool == "lse" else s.max(1)
    return pooled + X[:, :START] @ V.T + b


@pytest.fixture(scope="module")
def data():
    return bags(90, 0), bags(40, 1)


@pytest.mark.parametrize("pool", ["lse", "max"])
def test_scores_are_the_pooled_instance_scores_plus_the_global_term(data, pool):
    (X, Y), (Xt, Yt) = data
    head = MILHead(pool=pool, lam=1e-3, bag=[START, K, D]).fit(X, Y, L)
    z = head.logits(Xt)
    np.testing.assert_allclose(z, written_out(Xt, *parts(head), pool), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.exp(head.log_output(z)), expit(z), atol=1e-12)  # label sets: a sigmoid each
    assert head.fits_label_sets and head.info["bag"] == [START, K, D] and head.info["pool"] == pool
    from sklearn.metrics import average_precision_score

    assert np.mean([average_precision_score(Yt[:, j], z[:, j]) for j in range(L)]) > 0.9  # it learned the bags


def test_the_fit_is_a_stationary_point_of_the_penalised_cross_entropy(data):
    """Gradient of mean_n sum_l BCE(z_nl, y_nl) + lam (|W|^2 + |V|^2), written out, is ~0 at the fit
    (log-sum-exp pooling: the objective is convex, so this is its minimum)."""
    (X, Y), _ = data
    lam = 1e-2
    head = MILHead(lam=lam, bag=[START, K, D], max_iter=500).fit(X, Y, L)
    W, V, b = parts(head)
    T, Gl = X[:, START:].reshape(len(X), K, D), X[:, :START]
    s = np.einsum("nkd,ld->nkl", T, W)
    z = logsumexp(s, axis=1) + Gl @ V.T + b
    dz = (expit(z) - Y) / len(X)  # (N, L)
    att = softmax(s, axis=1)  # d lse / d s
    gW = np.einsum("nl,nkl,nkd->ld", dz, att, T) + 2 * lam * W
    gV = dz.T @ Gl + 2 * lam * V
    gb = dz.sum(0)
    assert max(np.abs(gW).max(), np.abs(gV).max(), np.abs(gb).max()) < 2e-4
    assert np.abs(W).max() > 0.1  # not the trivial zero solution


def test_lam_is_the_cross_validated_best_of_the_grid_and_the_grid_is_the_default(data):
    (X, Y), _ = data
    head = MILHead(lam=[1e-4, 3.0], bag=[START, K, D]).fit(X, Y, L)
    cv = head.info["cv_mean_ap"]
    assert set(cv) == {"0.0001", "3"} and cv["0.0001"] > cv["3"] + 0.05  # a crushing penalty loses
    assert head.info["lam"] == 1e-4
    assert "cross-validated" in head.info["lam_search"]
    assert MILHead().get_params()["lam"] is None and LAM_GRID == (1e-5, 1e-4, 1e-3)
    fold = MILHead(**{**head.get_params(), **head.fold_params(90, 60)})
    assert fold.lam == 1e-4 and fold.bag == [START, K, D]  # fold heads keep the chosen lam and the bag


def test_one_label_per_image_is_a_softmax_over_the_pooled_scores(data):
    (X, Y), (Xt, _) = data
    y = Y.argmax(1)
    head = MILHead(lam=1e-3, bag=[START, K, D]).fit(X, y, L)
    z = head.logits(Xt)
    np.testing.assert_allclose(z, written_out(Xt, *parts(head), "lse"), atol=1e-10)
    np.testing.assert_allclose(head.predict_proba(Xt), softmax(z, axis=1), atol=1e-12)
    assert not head.fits_label_sets


def test_without_a_bag_it_is_a_linear_model_on_the_whole_row(data):
    (X, Y), (Xt, _) = data
    head = MILHead(lam=1e-3).fit(X, Y, L)
    assert head.info["bag"] is None and sorted(head.arrays) == ["V", "b"]
    np.testing.assert_allclose(head.logits(Xt), Xt @ head.arrays["V"].T + head.arrays["b"], atol=1e-12)


def test_the_bag_comes_from_the_fusions_layout():
    layout = [{"name": "image:efficientnet-lite0", "start": 0, "stop": 1280},
              {"name": "image:tilebag:2:efficientnet-lite0", "start": 1280, "stop": 1280 + 4 * 1280, "instances": 4}]
    assert MILHead().for_row(layout).bag == [1280, 4, 1280]
    assert MILHead(bag=[0, 2, 3]).for_row(layout).bag == [0, 2, 3]  # given: kept
    assert MILHead().for_row(layout[:1]).bag is None
    with pytest.raises(ValueError, match="one bag of instances, the row holds 2"):
        MILHead().for_row([*layout, {**layout[1], "name": "image:tilebag:3:x", "instances": 9}])


@pytest.mark.parametrize("pool", ["lse", "max"])
def test_torch_and_onnx_forms_equal_the_numpy_scores(data, pool):
    ort = pytest.importorskip("onnxruntime")
    from wordsight.export.torch_graph import to_onnx

    (X, Y), (Xt, _) = data
    head = MILHead(pool=pool, lam=1e-3, bag=[START, K, D]).fit(X, Y, L)
    with torch.no_grad():
        z = head.to_torch()(torch.from_numpy(Xt)).numpy()
    np.testing.assert_allclose(z, head.logits(Xt), atol=1e-10)
    model = to_onnx(head.to_torch(), ["logits"], "mil", {"features": torch.from_numpy(Xt[:3])})
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(["logits"], {"features": Xt})[0], head.logits(Xt), atol=1e-10)


def test_a_saved_model_predicts_the_same_and_keeps_its_pooling(data, tmp_path):
    (X, Y), (Xt, _) = data
    sets = [tuple(f"l{j}" for j in np.nonzero(r)[0]) for r in Y]
    clf = Classifier(task="multi-label", head=MILHead(pool="max", lam=1e-3, bag=[START, K, D])).fit(X, sets)
    clf.save(tmp_path / "m")
    back = Classifier.load(tmp_path / "m")
    np.testing.assert_array_equal(back.predict_proba(Xt), clf.predict_proba(Xt))
    assert back.state_.head.info["pool"] == "max" and list(back.state_.head.bag) == [START, K, D]
    assert back.predict(Xt).tolist() == clf.predict(Xt).tolist()


def test_rows_of_another_width_are_refused_in_one_line(data):
    (X, Y), (Xt, _) = data
    head = MILHead(lam=1e-3, bag=[START, K, D]).fit(X, Y, L)
    with pytest.raises(ValueError, match=r"rows of 24 features, but this mil head reads 23 \(a bag of 4 instances "
                                         r"of 5 at column 3\)"):
        head.logits(np.concatenate([Xt, Xt[:, :1]], 1))
    with pytest.raises(ValueError, match=r"bag \[3, 4, 5\] .* does not fit rows of 18 features"):
        head.logits(Xt[:, :-D])
    with pytest.raises(ValueError, match=r"bag \[3, 5, 5\] .* does not fit rows of 23 features"):
        MILHead(bag=[START, 5, D]).fit(X, Y, L)


def test_the_default_search_goes_below_the_grid_while_its_smallest_lam_wins(data):
    (X, Y), _ = data
    head = MILHead(bag=[START, K, D]).fit(X, Y, L)
    cv = {float(k): v for k, v in head.info["cv_mean_ap"].items()}
    assert {1e-5, 1e-4, 1e-3} <= set(cv) and len(cv) <= 5
    best = max(cv, key=lambda lam: (round(cv[lam], 6), lam))
    assert head.info["lam"] == best
    for lam in sorted(v for v in cv if v < 1e-5):  # each extension: a tenth of the best so far, at the edge
        before = {k: v for k, v in cv.items() if k > lam}
        assert max(before, key=lambda k: (round(before[k], 6), k)) == pytest.approx(lam * 10)
    if len(cv) < 5:
        assert best != min(cv)  # it stopped because the smallest tried did not win
    given = MILHead(lam=[1e-5, 1e-4], bag=[START, K, D]).fit(X, Y, L)
    assert set(given.info["cv_mean_ap"]) == {"1e-05", "0.0001"}  # a given grid is searched as given


def test_the_search_extends_down_two_decades_at_most_while_the_smallest_wins(data):
    """A score that rewards larger weights (smaller lam) every time: the search goes 1e-6, 1e-7, then stops."""
    from wordsight.estimator.heads.mil_fit import choose_lam

    (X, Y), _ = data
    T, Gl = X[:, START:].reshape(len(X), K, D), X[:, :START]
    noise = np.random.default_rng(3).normal(size=Y.shape)

    def score(w, rows):  # positives ranked higher the larger the weights (unsaturated: noise of sd 1)
        return Y[rows] * 0.2 * np.log1p(np.abs(w["W"]).sum()) + noise[rows]

    lam, cv = choose_lam(T, Gl, Y, L, LAM_GRID, "lse", 100, score, extend=0)
    assert lam == 1e-5 and len(cv) == 3  # the grid's edge won
    lam, cv = choose_lam(T, Gl, Y, L, LAM_GRID, "lse", 100, score, extend=1)
    assert lam == 1e-6 and set(cv) == {"1e-06", "1e-05", "0.0001", "0.001"} and cv["1e-06"] > cv["1e-05"]
    lam, cv = choose_lam(T, Gl, Y, L, LAM_GRID, "lse", 100, score, extend=2)
    assert set(cv) == {"1e-07", "1e-06", "1e-05", "0.0001", "0.001"} and lam in (1e-6, 1e-7)  # 1e-6 won: 1e-7 tried
