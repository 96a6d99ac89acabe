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
    assert cv["0.0001"] > 0.95  # held-out rows scored with their tiles (the global hint alone: about 0.6)
    assert head.info["lam"] == 1e-4
    assert head.info["lam_search"] == "3-fold cross-validated mean average precision"
    assert MILHead(lam=1e-3, bag=[START, K, D]).fit(X, Y, L).info["lam_search"] == "given or too few images"
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
    (X, Y), (Xt, _) = data
    assert_torch_and_onnx_forms_equal(MILHead(pool=pool, lam=1e-3, bag=[START, K, D]).fit(X, Y, L), Xt)


def assert_torch_and_onnx_forms_equal(head, Xt):
    """The head's torch module and its ONNX export score ``Xt`` as its numpy ``logits`` do."""
    ort = pytest.importorskip("onnxruntime")
    from wordsight.export.torch_graph import to_onnx

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


def test_a_head_rebuilt_from_its_state_alone_keeps_its_bag_pool_and_forms(data):
    """A loaded head's parameters may be the defaults (bag None, pool lse): what it learned (info)
    decides, in numpy and in torch; without a bag the torch form is the linear map."""
    (X, Y), (Xt, _) = data
    head = MILHead(pool="max", lam=1e-3, bag=[START, K, D]).fit(X, Y, L)
    arrays, info = head.state()
    back = MILHead.from_state(arrays, info, {})
    assert back.pool == "lse" and back.bag is None and back.n_classes == L == head.n_classes
    np.testing.assert_allclose(back.logits(Xt), written_out(Xt, *parts(head), "max"), atol=1e-10)
    with torch.no_grad():
        np.testing.assert_allclose(back.to_torch()(torch.from_numpy(Xt)).numpy(), back.logits(Xt), atol=1e-10)
    assert MILHead.state_arrays(info) == ["V", "b", "W"] and MILHead.state_arrays({"bag": None}) == ["V", "b"]
    flat = MILHead(lam=1e-3).fit(X, Y, L)
    with torch.no_grad():
        np.testing.assert_allclose(flat.to_torch()(torch.from_numpy(Xt)).numpy(), flat.logits(Xt), atol=1e-10)
    assert flat.state_problems(X.shape[1], L) == []


def test_state_problems_name_the_array_and_the_shape_it_must_have(data):
    (X, Y), _ = data
    head = MILHead(lam=1e-3, bag=[START, K, D]).fit(X, Y, L)
    assert head.state_problems(X.shape[1], L) == []
    head.arrays.update(W=np.zeros((L, 2)), V=np.zeros((L, 4)), b=np.zeros(2))
    head.info["pool"] = "mean"
    assert head.state_problems(X.shape[1], L) == [
        ("pool", "must be one of lse, max, not 'mean'"), ("V", "must be (3, 3), not (3, 4)"),
        ("W", "must be (3, 5) for a bag of 4 x 5, not (3, 2)"), ("b", "must be (3,), not (2,)")]
    head.info["bag"] = [START, K + 1, D]
    assert head.state_problems(X.shape[1], L) == [
        ("bag", "the mil head's bag [3, 5, 5] ([start, instances, width]) does not fit rows of 23 features")]


def test_bags_anywhere_in_the_row_of_any_size_and_only_those(data):
    (X, Y), (Xt, _) = data
    first = np.concatenate([X[:, START:], X[:, :START]], 1)  # the bag first, the global block after
    head = MILHead(lam=1e-3, bag=[0, K, D]).fit(first, Y, L)
    np.testing.assert_allclose(head.logits(np.concatenate([Xt[:, START:], Xt[:, :START]], 1)),
                               written_out(Xt, *parts(head), "lse"), atol=1e-10)
    MILHead(lam=1e-3, bag=[START, 1, K * D]).fit(X, Y, L)  # one instance, the width of all four
    MILHead(lam=1e-3, bag=[START + K * D - 1, 1, 1]).fit(X, Y, L)  # one instance of one column
    for bad in ([-1, K, D], [START, 0, D], [START, K, 0]):
        with pytest.raises(ValueError, match="does not fit rows of 23 features"):
            MILHead(bag=bad).fit(X, Y, L)
    layout = [{"name": "image:a", "start": 0, "stop": 3},
              {"name": "image:tilebag:2:a", "start": 3, "stop": 13, "instances": 2}]
    bag = MILHead().for_row(layout).bag
    assert bag == [3, 2, 5] and all(type(v) is int for v in bag)


def test_mean_ap_skips_labels_without_a_positive_or_a_negative():
    from sklearn.metrics import average_precision_score

    from wordsight.estimator.heads.mil_fit import mean_ap

    Y = np.array([[0, 1, 1, 0], [0, 0, 1, 1], [0, 0, 1, 0], [0, 0, 1, 1]])
    S = np.array([[0.1, 0.9, 0.5, 0.2], [0.2, 0.1, 0.4, 0.8], [0.3, 0.3, 0.3, 0.7], [0.4, 0.2, 0.2, 0.3]])
    assert mean_ap(Y, S) == pytest.approx([average_precision_score(Y[:, 1], S[:, 1]),
                                           average_precision_score(Y[:, 3], S[:, 3])])


def test_the_cv_score_is_the_mean_ap_over_every_fold_and_label(data):
    """With a score that ignores the weights, the CV figure is computable without a fit: the mean of
    each held-out fold's per-label AP (3 shuffled folds, seed 0; ``random_state=None`` the same)."""
    from sklearn.metrics import average_precision_score
    from sklearn.model_selection import KFold

    from wordsight.estimator.heads.mil_fit import choose_lam

    (X, Y), _ = data
    T, Gl = X[:, START:].reshape(len(X), K, D), X[:, :START]
    S = np.random.default_rng(5).normal(size=Y.shape) + Y
    want = np.mean([average_precision_score(Y[va, j], S[va, j]) for _, va in
                    KFold(3, shuffle=True, random_state=0).split(Gl) for j in range(L) if 0 < Y[va, j].sum() < len(va)])
    for seed in (0, None):
        lam, cv = choose_lam(T, Gl, Y, L, (1e-4, 1e-3), "lse", 20, lambda w, rows: S[rows], random_state=seed)
        assert cv == {"0.0001": pytest.approx(want, abs=1e-12), "0.001": pytest.approx(want, abs=1e-12)}
        assert lam == 1e-3  # a tie: the larger lam
    few = choose_lam(T[:5], Gl[:5], Y[:5], L, (1e-6, 1e-5, 1e-4, 1e-3), "lse", 20, lambda w, rows: S[rows])
    assert few == (1e-4, {})  # fewer than 6 images: no folds, the grid's middle (upper of two)
    six = choose_lam(T[:6], Gl[:6], Y[:6], L, (1e-4, 1e-3), "lse", 20, lambda w, rows: S[rows])
    assert len(six[1]) == 2


def test_the_search_stops_extending_once_the_smallest_lam_loses(data):
    """Quality by round (1e-3, 1e-4, 1e-5, then 1e-6, 1e-7): 1e-5 wins the grid, 1e-6 loses, so 1e-7
    (which would win) is never tried."""
    from wordsight.estimator.heads.mil_fit import choose_lam

    (X, Y), _ = data
    T, Gl = X[:, START:].reshape(len(X), K, D), X[:, :START]
    noise = np.random.default_rng(9).normal(size=Y.shape)
    quality, calls = [0.1, 0.2, 0.4, 0.3, 0.9], []

    def score(w, rows):
        calls.append(1)
        return Y[rows] * quality[(len(calls) - 1) // 3] + noise[rows]

    lam, cv = choose_lam(T, Gl, Y, L, LAM_GRID, "lse", 20, score, extend=2)
    assert lam == 1e-5 and set(cv) == {"1e-06", "1e-05", "0.0001", "0.001"} and len(calls) == 12
