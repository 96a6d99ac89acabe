"""Golden numbers for the language prior's maths (``wordsight.estimator.prior_mix``): the mixed
log-probabilities, the fitted temperatures and the chosen weight, recomputed with numpy/scipy."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import log_softmax

from wordsight.estimator.heads import fit_temperature
from wordsight.estimator.prior_mix import WEIGHT_GRID, choose_weight, mix, prior_temperature

TOL = 1e-6
GRID = np.logspace(-2, 2, 41)  # the documented temperature grid: 10^-2 .. 10^2, 41 points


def nll(logits, y, t):
    return -log_softmax(t * logits, axis=1)[np.arange(len(y)), y].mean()


@pytest.fixture(scope="module")
def overconfident():
    """Zero-shot logits that are right 70% of the time but five times too sure: the best
    temperature is well below 1."""
    rng = np.random.default_rng(7)
    y = rng.integers(0, 4, 60)
    guess = np.where(rng.random(60) < 0.7, y, rng.integers(0, 4, 60))
    logits = 5.0 * (2.0 * np.eye(4)[guess] + rng.normal(size=(60, 4)) * 0.5)
    return logits, y


def test_mix_is_tempered_head_plus_weighted_tempered_prior_log_probabilities():
    rng = np.random.default_rng(1)
    head, prior = rng.normal(size=(5, 4)) * 3, rng.normal(size=(5, 4)) * 2
    expected = log_softmax(1.7 * head, axis=1) + 0.35 * log_softmax(0.4 * prior, axis=1)
    np.testing.assert_allclose(mix(head, prior, 0.35, 0.4, 1.7), expected, atol=TOL)
    # the default head temperature is 1
    expected = log_softmax(head, axis=1) + 2.0 * log_softmax(3.0 * prior, axis=1)
    np.testing.assert_allclose(mix(head, prior, 2.0, 3.0), expected, atol=TOL)


def test_mix_prior_temperature_multiplies_the_prior_logits_not_divides():
    """Protects the direction of the prior's temperature: t * logits, the scale fitted by NLL."""
    head, prior = np.array([[0.0, 0.0, 0.0]]), np.array([[2.0, 0.0, -1.0]])
    got = mix(head, prior, 1.0, 0.25)
    np.testing.assert_allclose(got, log_softmax(head, axis=1) + log_softmax(0.25 * prior, axis=1), atol=TOL)
    assert not np.allclose(got, log_softmax(head, axis=1) + log_softmax(prior / 0.25, axis=1), atol=1e-3)


def test_mix_is_finite_and_exact_for_very_large_logits():
    head = np.array([[1000.0, 0.0, -1000.0], [5.0, 900.0, 0.0]])
    prior = np.array([[0.0, 800.0, 1.0], [700.0, 0.0, -700.0]])
    got = mix(head, prior, 0.5, 2.0, 3.0)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, log_softmax(3.0 * head, axis=1) + 0.5 * log_softmax(2.0 * prior, axis=1), atol=TOL)


def test_mix_weight_zero_is_the_untempered_head_alone():
    head, prior = np.array([[3.0, 1.0, 0.0]]), np.array([[0.0, 9.0, 0.0]])
    np.testing.assert_allclose(mix(head, prior, 0.0, 2.0, 5.0), log_softmax(head, axis=1), atol=TOL)


def test_prior_temperature_is_the_nll_minimiser_on_the_grid_and_not_one(overconfident):
    """Protects the prior's calibration: on over-confident logits the fitted temperature is < 1."""
    logits, y = overconfident
    expected = GRID[int(np.argmin([nll(logits, y, t) for t in GRID]))]
    assert expected < 0.5  # the data make the temperature matter
    assert prior_temperature(logits, y) == pytest.approx(expected, abs=TOL)
    assert fit_temperature(logits, y) == pytest.approx(expected, abs=TOL)
    # and the fitted scale really lowers the held-out NLL against t = 1
    assert nll(logits, y, expected) < nll(logits, y, 1.0) - 0.1


def test_prior_temperature_is_above_one_for_timid_logits(overconfident):
    logits, y = overconfident
    timid = logits / 40.0
    expected = GRID[int(np.argmin([nll(timid, y, t) for t in GRID]))]
    assert expected > 2.0
    assert prior_temperature(timid, y) == pytest.approx(expected, abs=TOL)


def reference_weight(head, prior, y, t, grid, min_gain):
    """Best held-out accuracy, ties: lower log-loss (6 decimals), then smaller weight; kept only
    when it gets ``min_gain`` more images right than weight 0."""
    rows = []
    for w in grid:
        z = log_softmax(head, axis=1) if w == 0 else log_softmax(head, axis=1) + w * log_softmax(t * prior, axis=1)
        lp = log_softmax(z, axis=1)
        rows.append((int((z.argmax(1) == y).sum()), float(-lp[np.arange(len(y)), y].mean()), float(w)))
    best = max(rows, key=lambda r: (r[0], -round(r[1], 6), -r[2]))
    base = next(r for r in rows if r[2] == 0.0)
    return (best[2] if best[0] - base[0] >= min_gain else 0.0), {str(w): (c / len(y), n) for c, n, w in rows}


def test_choose_weight_golden_scores_and_choice(overconfident):
    prior, y = overconfident
    rng = np.random.default_rng(11)
    head = 1.5 * np.eye(4)[np.where(rng.random(len(y)) < 0.6, y, (y + 1) % 4)] + rng.normal(size=(len(y), 4)) * 0.3
    t = 0.3
    w_ref, scores_ref = reference_weight(head, prior, y, t, WEIGHT_GRID, 1)
    w, scores = choose_weight(head, prior, y, temperature=t)
    assert w == w_ref and w > 0
    assert set(scores) == set(scores_ref)
    for key, (acc, loss) in scores_ref.items():
        assert scores[key]["accuracy"] == pytest.approx(acc, abs=TOL)
        assert scores[key]["log_loss"] == pytest.approx(loss, abs=TOL)


def test_choose_weight_uses_the_given_temperature_for_the_prior(overconfident):
    prior, y = overconfident
    head = np.zeros((len(y), 4))
    head[np.arange(len(y)), (y + 1) % 4] = 0.2  # a weak, wrong head
    _, s_cold = choose_weight(head, prior, y, temperature=0.1, grid=(0.0, 1.0))
    _, s_hot = choose_weight(head, prior, y, temperature=2.0, grid=(0.0, 1.0))
    _, ref_cold = reference_weight(head, prior, y, 0.1, (0.0, 1.0), 1)
    _, ref_hot = reference_weight(head, prior, y, 2.0, (0.0, 1.0), 1)
    assert s_cold["1.0"]["log_loss"] == pytest.approx(ref_cold["1.0"][1], abs=TOL)
    assert s_hot["1.0"]["log_loss"] == pytest.approx(ref_hot["1.0"][1], abs=TOL)
    assert abs(ref_cold["1.0"][1] - ref_hot["1.0"][1]) > 0.1


def test_choose_weight_min_gain_boundary_exactly_one_image():
    """A weight that fixes exactly ``min_gain`` images is kept; one fewer is not."""
    y = np.array([0, 1, 2, 0, 1, 2])
    head = np.eye(3)[y] * 2.0
    head[1] = np.eye(3)[0] * 2.0  # the head gets one image wrong
    prior = np.log(np.full((6, 3), 0.05) + np.eye(3)[y] * 0.9)
    w, scores = choose_weight(head, prior, y, temperature=1.0, grid=(0.0, 1.0), min_gain=1)
    assert w == 1.0 and scores["1.0"]["accuracy"] == 1.0 and scores["0.0"]["accuracy"] == pytest.approx(5 / 6)
    assert choose_weight(head, prior, y, temperature=1.0, grid=(0.0, 1.0), min_gain=2)[0] == 0.0


def test_choose_weight_searches_the_documented_grid_and_needs_one_more_image_by_default():
    """The weight grid and MIN_GAIN = 1, written down from the module's documentation."""
    y = np.array([0, 1, 2, 0, 1, 2])
    head = np.eye(3)[y] * 2.0
    head[1] = np.eye(3)[0] * 2.0  # one image wrong
    prior = np.log(np.full((6, 3), 0.05) + np.eye(3)[y] * 0.9)
    w, scores = choose_weight(head, prior, y, temperature=1.0)
    assert list(scores) == ["0.0", "0.1", "0.2", "0.35", "0.5", "0.75", "1.0", "1.5", "2.0", "3.0", "5.0", "10.0"]
    assert w > 0  # one image more right is enough by default
    _, ref = reference_weight(head, prior, y, 1.0, [float(k) for k in scores], 1)
    assert w == reference_weight(head, prior, y, 1.0, [float(k) for k in scores], 1)[0]
    for key, (acc, loss) in ref.items():
        assert scores[key]["log_loss"] == pytest.approx(loss, abs=TOL)


def test_choose_weight_ties_go_to_the_lower_log_loss_then_the_smaller_weight():
    y = np.array([0, 1, 0, 1])
    head = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0]])  # all right
    agreeing = np.log(np.array([[0.9, 0.1], [0.1, 0.9], [0.9, 0.1], [0.1, 0.9]]))
    w, scores = choose_weight(head, agreeing, y, temperature=1.0, grid=(0.0, 0.5, 1.0), min_gain=0)
    assert w == 1.0  # same accuracy, lowest log-loss
    useless = np.zeros((4, 2))  # adds a constant: same accuracy, same log-loss
    assert choose_weight(head, useless, y, temperature=1.0, grid=(0.0, 0.5, 1.0), min_gain=0)[0] == 0.0


def test_choose_weight_without_zero_in_the_grid_counts_gain_from_nothing():
    y = np.array([0, 1, 0, 1])
    head = np.zeros((4, 2))
    prior = np.log(np.array([[0.9, 0.1], [0.1, 0.9], [0.9, 0.1], [0.1, 0.9]]))
    assert choose_weight(head, prior, y, temperature=1.0, grid=(0.5,), min_gain=4)[0] == 0.5
    assert choose_weight(head, prior, y, temperature=1.0, grid=(0.5,), min_gain=5)[0] == 0.0


def reference_folds(y, seed):
    """Fold f holds out the f-th image (in a seeded order) of each class; min(k, 5) folds."""
    k = np.bincount(y)[np.bincount(y) > 0].min()
    n = min(k, 5)
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), int)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        fold_of[idx] = np.arange(len(idx)) % n
    return [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)) for f in range(n)]


@pytest.mark.parametrize("counts, n_folds", [((2, 2, 2), 2), ((3, 7, 4), 3), ((6, 9, 8), 5), ((0, 5, 3), 3)])
def test_leave_one_shot_out_folds(counts, n_folds):
    from wordsight.estimator.prior_mix import leave_one_shot_out_folds

    y = np.repeat(np.arange(len(counts)), counts)
    folds = leave_one_shot_out_folds(y, seed=4)
    assert len(folds) == n_folds
    for (tr, va), (rtr, rva) in zip(folds, reference_folds(y, 4)):
        np.testing.assert_array_equal(tr, rtr)
        np.testing.assert_array_equal(va, rva)
        assert set(tr).isdisjoint(va) and len(tr) + len(va) == len(y)
        present = [c for c, n in enumerate(counts) if n]
        assert sorted(set(y[va])) == present  # every fold holds out an image of every class
    assert sorted(np.concatenate([va for _, va in folds]).tolist()) == list(range(len(y)))


def test_no_folds_when_a_class_has_one_image():
    from wordsight.estimator.prior_mix import leave_one_shot_out_folds

    assert leave_one_shot_out_folds(np.array([0, 0, 1, 2, 2])) == []
    assert leave_one_shot_out_folds(np.array([], dtype=np.int64)) == []


def test_prior_views_and_the_automatic_choice():
    from PIL import Image

    from wordsight.estimator.fusion.prior import PRIOR_VIEWS
    from wordsight.features.views import VIEWS, choose_view
    from wordsight.zeroshot.image_text import TEXT_MAP_ALPHA

    assert PRIOR_VIEWS == ("auto", "plain", "light-background", "invert")
    assert set(PRIOR_VIEWS[1:]) == set(VIEWS)
    assert TEXT_MAP_ALPHA == 10.0  # chosen on Fashion-MNIST (benchmarks/zeroshot_fashion_mnist.py)

    def bordered(level):
        a = np.full((16, 16), level, np.uint8)
        a[4:12, 4:12] = 255 - level
        return Image.fromarray(a)

    assert choose_view([bordered(10)] * 3) == "light-background"  # light garments on black
    assert choose_view([bordered(240)] * 3) == "plain"
    assert choose_view([bordered(15), bordered(15), bordered(200)]) == "light-background"  # the majority decides
    assert choose_view([bordered(15), bordered(200)]) == "plain"  # half is no majority
    assert choose_view([bordered(16)]) == "plain"  # the threshold itself is not near-black
    assert choose_view([]) == "plain"
