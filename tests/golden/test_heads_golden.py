"""Golden numbers for every head: probabilities recomputed in the test with scikit-learn, torch and
numpy directly (never with wordsight's code), compared to 1e-6.

Heads are reached only through ``make_head(name, **params).fit(X, y_idx, n_classes)`` and
``predict_proba``/``logits``, so these tests survive a change of the heads' internals.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import log_softmax, softmax

from wordsight.estimator import make_head
from wordsight.estimator.heads import LogisticHead, head_taking

TOL = 1e-6


@pytest.fixture(scope="module")
def data():
    """Three unbalanced, overlapping classes in 6 dimensions (seeded): 14 + 8 + 5 training rows."""
    rng = np.random.default_rng(16)
    centres = rng.normal(size=(3, 6)) * 1.5
    y = np.repeat([0, 1, 2], [14, 8, 5])
    X = centres[y] + rng.normal(size=(len(y), 6))
    y_test = np.array([0, 1, 2, 0, 1, 2, 0, 2, 1, 0])
    X_test = centres[y_test] + rng.normal(size=(len(y_test), 6)) * 1.3
    return X * 3.0 + 1.0, y, X_test * 3.0 + 1.0  # off-centre, off-scale: the scaler matters


def standardise(X, X_test):
    """Centre per feature, scale all features by one overall standard deviation."""
    mean = X.mean(0)
    scale = np.sqrt(np.mean((X - mean) ** 2))
    return (X - mean) / scale, (X_test - mean) / scale


def test_logistic_head_probabilities_equal_scikit_learn_on_standardised_features(data):
    from sklearn.linear_model import LogisticRegression

    X, y, X_test = data
    Xs, Ts = standardise(X, X_test)
    ref = LogisticRegression(C=0.5, max_iter=1000, random_state=0).fit(Xs, y).predict_proba(Ts)
    head = make_head("logistic", C=0.5).fit(X, y, 3)
    np.testing.assert_allclose(head.predict_proba(X_test), ref, atol=TOL)
    np.testing.assert_allclose(softmax(head.logits(X_test), axis=1), ref, atol=TOL)
    assert ref.max(1).min() < 0.9  # not a saturated output that any scale would give


def test_logistic_head_binary_probabilities_are_the_sigmoid_of_the_log_odds(data):
    from sklearn.linear_model import LogisticRegression

    X, y, X_test = data
    keep = y < 2
    Xs, Ts = standardise(X[keep], X_test)
    ref = LogisticRegression(C=0.5, max_iter=1000, random_state=0).fit(Xs, y[keep]).predict_proba(Ts)
    head = make_head("logistic", C=0.5).fit(X[keep], y[keep], 2)
    np.testing.assert_allclose(head.predict_proba(X_test), ref, atol=TOL)


def test_logistic_head_class_weight_balanced_changes_the_probabilities_like_scikit_learn(data):
    from sklearn.linear_model import LogisticRegression

    X, y, X_test = data
    Xs, Ts = standardise(X, X_test)
    ref = LogisticRegression(C=0.5, max_iter=1000, random_state=0, class_weight="balanced").fit(Xs, y)
    head = make_head("logistic", C=0.5, class_weight="balanced").fit(X, y, 3)
    np.testing.assert_allclose(head.predict_proba(X_test), ref.predict_proba(Ts), atol=TOL)
    plain = make_head("logistic", C=0.5).fit(X, y, 3)
    assert np.abs(head.predict_proba(X_test) - plain.predict_proba(X_test)).max() > 1e-3


def svm_reference(X, y, X_test, C=1.0):
    """LinearSVC decision values, softmax at the temperature with the lowest training NLL on the
    grid 10^-2 .. 10^2 (41 points); returns (probabilities, temperature, test decisions)."""
    from sklearn.svm import LinearSVC

    Xs, Ts = standardise(X, X_test)
    svc = LinearSVC(C=C, random_state=0, max_iter=5000).fit(Xs, y)
    d_train, d_test = svc.decision_function(Xs), svc.decision_function(Ts)
    grid = np.logspace(-2, 2, 41)
    nll = [-log_softmax(t * d_train, axis=1)[np.arange(len(y)), y].mean() for t in grid]
    t = grid[int(np.argmin(nll))]
    return softmax(t * d_test, axis=1), t, d_test


def test_svm_head_probability_temperature_is_fitted_on_training_decisions(data):
    """Protects the SVM's calibration: with the temperature forced to 1 the probabilities differ."""
    X, y, X_test = data
    ref, t, decisions = svm_reference(X, y, X_test)
    assert abs(t - 1.0) > 0.2, t  # the data must make the fitted temperature matter
    assert np.abs(softmax(decisions, axis=1) - ref).max() > 1e-2  # temperature 1 would be caught
    head = make_head("svm", C=1.0).fit(X, y, 3)
    np.testing.assert_allclose(head.predict_proba(X_test), ref, atol=TOL)
    np.testing.assert_allclose(softmax(head.logits(X_test), axis=1), ref, atol=TOL)


def mlp_reference(X, y, X_test, n_classes, hidden=(8,), dropout=0.3, weight_decay=0.05, steps=40,
                  lr=1e-3, smoothing=0.1, batch=16, seed=0):
    """The MLP head's documented recipe written out in torch: scale, dropout-ReLU layers, AdamW,
    one-cycle schedule, label smoothing, seeded shuffles; probabilities from the float64 weights."""
    import torch

    mean = X.mean(0)
    scale = np.sqrt(np.mean((X - mean) ** 2))
    Xs, Ts = (X - mean) / scale, (X_test - mean) / scale
    torch.manual_seed(seed)
    layers, d = [torch.nn.Dropout(dropout)], X.shape[1]
    for h in hidden:
        layers += [torch.nn.Linear(d, h), torch.nn.ReLU(), torch.nn.Dropout(dropout)]
        d = h
    layers.append(torch.nn.Linear(d, n_classes))
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    Xt, yt = torch.from_numpy(Xs.astype(np.float32)), torch.from_numpy(y.astype(np.int64))
    g = torch.Generator().manual_seed(seed)
    done = 0
    while done < steps:
        order = torch.randperm(len(yt), generator=g)
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            loss = torch.nn.functional.cross_entropy(net(Xt[idx]), yt[idx], label_smoothing=smoothing)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            done += 1
            if done == steps:
                break
    h = Ts
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    for i, lin in enumerate(linears):
        h = h @ lin.weight.detach().double().numpy().T + lin.bias.detach().double().numpy()
        if i < len(linears) - 1:
            h = np.maximum(h, 0)
    return softmax(h, axis=1)


def test_mlp_head_probabilities_equal_the_recipe_written_out_in_torch(data):
    X, y, X_test = data
    ref = mlp_reference(X, y, X_test, 3)
    head = make_head("mlp", hidden=(8,), epochs=1, min_steps=40, batch=16).fit(X, y, 3)
    np.testing.assert_allclose(head.predict_proba(X_test), ref, atol=TOL)
    assert np.ptp(ref, axis=1).min() > 1e-3  # not uniform


def knn_reference(X, y, X_test, n_classes, k=5, balanced=False):
    """Cosine neighbours (scikit-learn's brute-force search), votes exp((cos - 1) / 0.1) times the
    class weight n / (n_classes * count), plus 1e-6, normalised."""
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute").fit(X)
    dist, idx = nn.kneighbors(X_test)
    cw = len(y) / (n_classes * np.bincount(y, minlength=n_classes)) if balanced else np.ones(n_classes)
    P = np.full((len(X_test), n_classes), 1e-6)
    for row in range(len(X_test)):
        for dd, j in zip(dist[row], idx[row]):
            P[row, y[j]] += np.exp(-dd / 0.1) * cw[y[j]]
    return P / P.sum(1, keepdims=True)


@pytest.mark.parametrize("balanced", [False, True], ids=["plain", "class_weight_balanced"])
def test_knn_head_probabilities_equal_cosine_neighbour_votes(data, balanced):
    X, y, X_test = data
    ref = knn_reference(X, y, X_test, 3, k=5, balanced=balanced)
    params = {"class_weight": "balanced"} if balanced else {}
    head = make_head("knn", k=5, **params).fit(X, y, 3)
    np.testing.assert_allclose(head.predict_proba(X_test), ref, atol=TOL)
    np.testing.assert_allclose(softmax(head.logits(X_test), axis=1), ref, atol=TOL)


def test_knn_class_weight_balanced_favours_the_rare_class(data):
    X, y, X_test = data
    plain = make_head("knn", k=5).fit(X, y, 3).predict_proba(X_test)
    balanced = make_head("knn", k=5, class_weight="balanced").fit(X, y, 3).predict_proba(X_test)
    voted = plain[:, 2] > 0.01  # rows where the rare class has neighbours
    assert voted.sum() >= 2 and (balanced[voted, 2] > plain[voted, 2] + 0.05).all()


@pytest.mark.parametrize("class_weight", [None, "balanced"])
def test_random_forest_head_probabilities_equal_scikit_learn(data, class_weight):
    from sklearn.ensemble import RandomForestClassifier

    X, y, X_test = data
    rf = RandomForestClassifier(n_estimators=15, max_depth=4, random_state=5, class_weight=class_weight, n_jobs=1)
    P = rf.fit(X, y).predict_proba(X_test) + 1e-9
    ref = P / P.sum(1, keepdims=True)
    head = make_head("random_forest", n_estimators=15, max_depth=4, random_state=5, class_weight=class_weight)
    head.fit(X, y, 3)
    np.testing.assert_allclose(head.predict_proba(X_test), ref, atol=TOL)


def test_image_fusion_l2_normalises_each_encoder_block_before_the_head():
    """The Classifier on two encoders' embeddings: each block L2-normalised (float32), then
    concatenated, then the logistic head: probabilities equal that pipeline written out."""
    from sklearn.linear_model import LogisticRegression

    from wordsight.estimator import Classifier
    from wordsight.estimator.feature_blocks import FeatureBlocks
    from wordsight.io.sources import Sample

    rng = np.random.default_rng(3)
    y = np.repeat([0, 1, 2], 6)
    a, b = rng.normal(size=(18, 5)) * 7 + y[:, None], rng.normal(size=(18, 3)) * 0.01 + 0.01 * y[:, None]
    names = np.array(["ant", "bee", "cow"])
    samples = [Sample(f"img{i}.png", names[c]) for i, c in enumerate(y)]
    blocks = FeatureBlocks(samples, {"efficientnet-lite0": a.astype(np.float32), "mobilenetv2": b.astype(np.float32)})
    clf = Classifier(encoders=("efficientnet-lite0", "mobilenetv2"), head=LogisticHead(C=2.0)).fit(blocks)

    def l2n(v):
        v = v.astype(np.float32)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    M = np.concatenate([l2n(a), l2n(b)], 1).astype(np.float64)
    Ms, _ = standardise(M, M)
    ref = LogisticRegression(C=2.0, max_iter=1000, random_state=0).fit(Ms, y).predict_proba(Ms)
    np.testing.assert_allclose(clf.predict_proba(blocks), ref, atol=TOL)
    assert clf.classes_.tolist() == names.tolist()


@pytest.mark.parametrize("name", ["logistic", "svm"])
def test_penalty_search_is_stratified_3_fold_cv_over_the_log_grid(data, name):
    """Protects the C search: 3 shuffled stratified folds (seed 0) on the scaled features, every
    C of 10^-4 .. 10^2 (the SVM stops at 1), best mean accuracy, ties to the C nearest 1."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.svm import LinearSVC

    X, y, X_test = data
    Xs, Ts = standardise(X, X_test)
    grid = [float(c) for c in np.logspace(-4, 2, 7)][: 7 if name == "logistic" else 5]

    def make(c):
        if name == "logistic":
            return LogisticRegression(C=c, max_iter=1000, random_state=0)
        return LinearSVC(C=c, random_state=0, max_iter=5000)

    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(Xs, y))
    scores = {c: float(np.mean([np.mean(make(c).fit(Xs[tr], y[tr]).predict(Xs[va]) == y[va]) for tr, va in folds]))
              for c in grid}
    best = max(grid, key=lambda c: (round(scores[c], 6), -abs(np.log10(c))))
    head = make_head(name).fit(X, y, 3)
    assert head.info["C"] == best
    assert head.info["cv_accuracy"] == pytest.approx({str(c): s for c, s in scores.items()}, abs=TOL)
    assert len(set(scores.values())) > 1  # the grid is not flat on these data
    if name == "logistic":
        ref = make(best).fit(Xs, y).predict_proba(Ts)
        np.testing.assert_allclose(head.predict_proba(X_test), ref, atol=TOL)


def test_a_given_c_grid_is_searched_and_a_single_c_is_taken_as_is(data):
    X, y, _ = data
    assert make_head("logistic", C=(0.01, 1.0)).fit(X, y, 3).info["C"] in (0.01, 1.0)
    assert make_head("logistic", C=0.37).fit(X, y, 3).info["C"] == 0.37
    one_each = np.array([0, 1, 2])
    # a class with a single image: no folds, the middle of the grid
    assert make_head("logistic").fit(X[[0, 14, 22]], one_each, 3).info["C"] == float(np.logspace(-4, 2, 7)[3])


def test_probabilities_stay_exact_for_very_large_logits(data):
    X, y, X_test = data
    head = make_head("logistic", C=100.0).fit(X, y, 3)
    far = X_test * 1e3  # logits in the thousands
    assert np.abs(head.logits(far)).max() > 800
    P = head.predict_proba(far)
    assert np.isfinite(P).all()
    np.testing.assert_allclose(P, softmax(head.logits(far), axis=1), atol=TOL)


def test_penalty_search_ignores_a_class_absent_from_training(data):
    """With n_classes=4 and class 3 never seen, the folds come from the classes present."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    X, y, X_test = data
    Xs, Ts = standardise(X, X_test)
    grid = [float(c) for c in np.logspace(-4, 2, 7)]
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(Xs, y))
    scores = {c: np.mean([np.mean(LogisticRegression(C=c, max_iter=1000, random_state=0).fit(Xs[tr], y[tr])
                                  .predict(Xs[va]) == y[va]) for tr, va in folds]) for c in grid}
    best = max(grid, key=lambda c: (round(scores[c], 6), -abs(np.log10(c))))
    head = make_head("logistic").fit(X, y, 4)
    assert head.info["C"] == best and "3-fold" in head.info["c_search"]
    assert head.predict_proba(X_test)[:, 3].max() < 1e-6


def test_a_class_with_one_image_means_no_folds_and_the_middle_of_the_grid(data):
    X, y, _ = data
    keep = np.r_[np.flatnonzero(y == 0), np.flatnonzero(y == 1), np.flatnonzero(y == 2)[:1]]
    head = make_head("logistic").fit(X[keep], y[keep], 3)
    assert head.info["C"] == float(np.logspace(-4, 2, 7)[3]) and "c_search" not in head.info


def test_two_images_per_class_give_two_folds_and_two_classes_three(data):
    X, y, _ = data
    keep = np.r_[np.flatnonzero(y == 0)[:5], np.flatnonzero(y == 1)[:5], np.flatnonzero(y == 2)[:2]]
    assert make_head("logistic").fit(X[keep], y[keep], 3).info["c_search"] == "2-fold stratified cross-validation"
    binary = y < 2
    assert make_head("logistic").fit(X[binary], y[binary], 2).info["c_search"] == "3-fold stratified cross-validation"


@pytest.mark.parametrize("name", ["logistic", "svm"])
def test_linear_form_folds_scaling_and_temperature_into_w_and_b(data, name):
    """``linear()`` (used by explanations in torch): X @ W.T + b equals the head's logits."""
    X, y, X_test = data
    head = head_taking(name, C=1.0).fit(X, y, 3)
    W, b = head.linear()
    np.testing.assert_allclose(X_test @ W.T + b, head.logits(X_test), atol=1e-9)


@pytest.mark.parametrize("name", ["logistic", "svm", "knn", "random_forest"])
def test_heads_rebuilt_from_a_saved_folder_predict_the_same(data, name, tmp_path):
    from wordsight.estimator import Classifier

    X, y, X_test = data
    params = {"n_estimators": 5} if name == "random_forest" else None
    clf = Classifier(head=head_taking(name, C=1.0, **(params or {}))).fit(X, y)
    clf.save(tmp_path / name)
    np.testing.assert_array_equal(Classifier.load(tmp_path / name).predict_proba(X_test), clf.predict_proba(X_test))


@pytest.fixture(scope="module")
def overlapping():
    """Two overlapping 2-D classes (not separable): a fitted temperature well inside its grid."""
    rng = np.random.default_rng(21)
    y = np.repeat([0, 1], 60)
    X = rng.normal(size=(120, 2)) + y[:, None] * 1.2
    return X, y, rng.normal(size=(15, 2)) + 0.6


def test_svm_binary_probabilities_use_both_signs_of_the_decision(overlapping):
    """Binary LinearSVC keeps one decision d: the head's logits are (-d, d), tempered."""
    from sklearn.svm import LinearSVC

    X, y, X_test = overlapping
    Xs, Ts = standardise(X, X_test)
    svc = LinearSVC(C=1.0, random_state=0, max_iter=5000).fit(Xs, y)
    d_train, d_test = svc.decision_function(Xs), svc.decision_function(Ts)
    two = lambda d: np.stack([-d, d], 1)  # noqa: E731
    grid = np.logspace(-2, 2, 41)
    t = grid[int(np.argmin([-log_softmax(s * two(d_train), axis=1)[np.arange(len(y)), y].mean() for s in grid]))]
    assert 0.2 < t < 20 and abs(t - 1) > 0.1
    ref = softmax(t * two(d_test), axis=1)
    assert ref.max(1).min() < 0.95  # not saturated: a wrong temperature shows
    head = make_head("svm", C=1.0).fit(X, y, 2)
    np.testing.assert_allclose(head.predict_proba(X_test), ref, atol=TOL)


def test_svm_multiclass_temperature_inside_the_grid(overlapping):
    X, y, X_test = overlapping
    y3 = np.where(X[:, 0] > 1.5, 2, y)
    ref, t, decisions = svm_reference(X, y3, X_test)
    assert 0.05 < t < 50 and abs(t - 1) > 0.1 and ref.max(1).min() < 0.95
    np.testing.assert_allclose(make_head("svm", C=1.0).fit(X, y3, 3).predict_proba(X_test), ref, atol=TOL)


@pytest.mark.parametrize("name", ["logistic", "svm"])
def test_binary_penalty_search_and_absent_class(overlapping, name):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.svm import LinearSVC

    X, y, X_test = overlapping
    Xs, _ = standardise(X, X_test)
    grid = [float(c) for c in np.logspace(-4, 2, 7)][: 7 if name == "logistic" else 5]
    make = (lambda c: LogisticRegression(C=c, max_iter=1000, random_state=0)) if name == "logistic" else \
        (lambda c: LinearSVC(C=c, random_state=0, max_iter=5000))
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(Xs, y))
    scores = {c: float(np.mean([np.mean(make(c).fit(Xs[tr], y[tr]).predict(Xs[va]) == y[va]) for tr, va in folds]))
              for c in grid}
    best = max(grid, key=lambda c: (round(scores[c], 6), -abs(np.log10(c))))
    head = make_head(name).fit(X, y, 3)  # class 2 never seen
    assert head.info["C"] == best and head.info["cv_accuracy"] == pytest.approx({str(c): s for c, s in scores.items()})
    assert head.predict_proba(X_test)[:, 2].max() < 1e-6


def test_penalty_ties_go_to_the_c_nearest_one():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 12)
    X = rng.normal(size=(24, 3)) * 0.1 + y[:, None] * 10.0  # separable at every C of the grid
    head = make_head("logistic").fit(X, y, 2)
    assert set(head.info["cv_accuracy"].values()) == {1.0} and head.info["C"] == 1.0


def test_a_grid_of_two_is_searched_and_without_folds_takes_its_upper_middle(data):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    X, y, _ = data
    Xs, _ = standardise(X, X)
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(Xs, y))
    scores = {c: np.mean([np.mean(LogisticRegression(C=c, max_iter=1000, random_state=0).fit(Xs[tr], y[tr])
                                  .predict(Xs[va]) == y[va]) for tr, va in folds]) for c in (0.0001, 1.0)}
    head = make_head("logistic", C=(0.0001, 1.0)).fit(X, y, 3)
    assert head.info["C"] == max(scores, key=lambda c: (round(scores[c], 6), -abs(np.log10(c))))
    assert scores[0.0001] != scores[1.0] and len(head.info["cv_accuracy"]) == 2
    one_each = [0, 14, 22]
    assert make_head("logistic", C=(0.0001, 1.0)).fit(X[one_each], y[one_each], 3).info["C"] == 1.0


def test_random_forest_sends_a_value_equal_to_the_threshold_left(data):
    """scikit-learn's trees go left when x <= threshold; a test point exactly on a split shows it."""
    from sklearn.ensemble import RandomForestClassifier

    X, y, _ = data
    rf = RandomForestClassifier(n_estimators=1, max_depth=1, random_state=1).fit(X, y)
    tree = rf.estimators_[0].tree_
    on_split = X[:3].copy()
    on_split[:, tree.feature[0]] = tree.threshold[0]
    P = rf.predict_proba(on_split) + 1e-9
    head = make_head("random_forest", n_estimators=1, max_depth=1, random_state=1).fit(X, y, 3)
    np.testing.assert_allclose(head.predict_proba(on_split), P / P.sum(1, keepdims=True), atol=TOL)
    assert not np.allclose(tree.value[tree.children_left[0]], tree.value[tree.children_right[0]])


@pytest.mark.parametrize("name", ["logistic", "svm", "knn", "random_forest"])
def test_no_rows_give_no_probabilities(data, name):
    X, y, _ = data
    head = head_taking(name, C=1.0, n_estimators=3).fit(X, y, 3)
    assert head.predict_proba(np.zeros((0, X.shape[1]))).shape == (0, 3)


def test_knn_default_is_five_neighbours(data):
    X, y, X_test = data
    np.testing.assert_allclose(make_head("knn").fit(X, y, 3).predict_proba(X_test), knn_reference(X, y, X_test, 3, k=5),
                               atol=TOL)


def test_folds_ignore_a_class_missing_in_the_middle(overlapping):
    X, y, _ = overlapping
    y02 = np.where(y == 1, 2, 0)  # classes 0 and 2 of three: class 1 has no image
    head = make_head("logistic").fit(X, y02, 3)
    assert head.info["c_search"] == "3-fold stratified cross-validation"
    assert head.predict_proba(X)[:, 1].max() < 1e-6


def test_knn_uses_the_given_k(data):
    X, y, X_test = data
    np.testing.assert_allclose(make_head("knn", k=3).fit(X, y, 3).predict_proba(X_test),
                               knn_reference(X, y, X_test, 3, k=3), atol=TOL)
