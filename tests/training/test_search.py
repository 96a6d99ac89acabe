"""The model search and ensembles on small synthetic feature blocks (no image is read).

Two "encoders" (the packaged names, so that saved folders name real encoders) hold random
features around class centres; the second is noisier. The search's numbers are pinned against
folds and fits made here directly, and the ensembles' maths against numpy and scikit-learn.
"""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

import wordsight
from wordsight._util.numerics import softmax
from wordsight.estimator import Classifier, ModelFolderError
from wordsight.estimator.block_sets import subset_blocks
from wordsight.estimator.ensemble import Ensemble, combine, fit_meta
from wordsight.estimator.feature_blocks import FeatureBlocks
from wordsight.estimator.heads import LogisticHead
from wordsight.io.sources import Sample
from wordsight.training.autofit import parse_time_limit, search_fit, select_members, stack_cv_accuracy
from wordsight.training.search import Candidate, SearchResult, Trial, cross_validate, make_folds, search

E0, E1 = "efficientnet-lite0", "mobilenetv2"


def make_blocks(n_per_class=12, k=3, seed=0, noise=(1.0, 2.5)) -> FeatureBlocks:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(k), n_per_class)
    emb = {}
    for enc, dim, s in ((E0, 10, noise[0]), (E1, 6, noise[1])):
        centres = rng.normal(size=(k, dim)) * 2
        emb[enc] = (centres[y] + s * rng.normal(size=(len(y), dim))).astype(np.float32)
    probs = {e: rng.dirichlet(np.ones(1000), size=len(y)).astype(np.float32) for e in (E0, E1)}
    samples = [Sample(f"img/{i:03d}.png", f"c{y[i]}") for i in range(len(y))]
    return FeatureBlocks(samples, emb, probs[E0], E0, probs_by_encoder=probs)


CANDIDATES = [Candidate((E0,), head="logistic", C=0.1), Candidate((E1,), head="logistic", C=0.1),
              Candidate((E0, E1), head="logistic", C=0.1), Candidate((E0, E1), head="knn")]


def test_subset_blocks_take_the_subsets_own_imagenet_probabilities():
    b = make_blocks()
    s = subset_blocks(b, [E1])
    assert list(s.embeddings) == [E1] and s.probs_encoder == E1
    np.testing.assert_array_equal(s.probs, b.probs_by_encoder[E1])
    assert subset_blocks(b, [E1, E0]).probs_encoder == E1
    with pytest.raises(ValueError, match="lack encoder"):
        subset_blocks(b, ["efficientnet-lite2"])


def test_cross_validation_equals_fits_on_the_same_stratified_folds():
    b = make_blocks()
    classes = ["c0", "c1", "c2"]
    y = np.asarray([classes.index(v) for v in b.labels])
    folds = make_folds(y, 3, seed=0)
    want_folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(np.zeros(len(y)), y))
    assert all((a[1] == w[1]).all() for a, w in zip(folds, want_folds))
    cand = Candidate((E0, E1), head="logistic", C=0.1)
    trial = cross_validate(cand, b, y, classes, folds, base={"random_state": 0})
    accs = []
    for tr, va in want_folds:
        clf = Classifier(encoders=(E0, E1), head=LogisticHead(C=0.1)).fit(b.take(tr))
        P = clf.predict_proba(b.take(va))
        np.testing.assert_allclose(trial.oof[va], P, atol=1e-12)
        accs.append(np.mean(P.argmax(1) == y[va]))
    assert trial.accuracy == pytest.approx(np.mean(accs)) and trial.std == pytest.approx(np.std(accs))
    assert trial.fit_seconds > 0 and trial.complete


def test_search_ranks_every_candidate_and_writes_the_leaderboard(tmp_path):
    b = make_blocks()
    res = search(b, candidates=CANDIDATES, seed=0)
    assert {t.candidate for t in res.trials} == set(CANDIDATES)
    ranked = res.ranked()
    assert [t.accuracy for t in ranked] == sorted((t.accuracy for t in ranked), reverse=True)
    # the noisy encoder alone is worst; the best is a candidate that sees the clean one
    assert E0 in res.best.candidate.encoders
    assert res.best.accuracy > next(t for t in res.trials if t.candidate.encoders == (E1,)).accuracy
    path = res.write_csv(tmp_path / "leaderboard.csv")
    lines = open(path).read().splitlines()
    assert lines[0].startswith("rank,model,kind") and len(lines) == 1 + len(CANDIDATES)
    assert res.best.candidate.name in lines[1] and "rank" in res.table()


def test_a_time_limit_stops_the_search_and_an_unknown_mode_is_refused():
    b = make_blocks()
    res = search(b, candidates=CANDIDATES * 1, time_limit=1e-3, seed=0)
    assert len(res.trials) == 1  # the first candidate stops after its first fold, then the study stops
    assert res.trials[0].state == "stopped after fold 1: time limit" and res.trials[0].oof is None
    with pytest.raises(ValueError, match="unknown search mode"):
        search(b, mode="exhaustive")


@pytest.mark.parametrize("text,want", [("600", 600), ("90s", 90), ("10m", 600), ("1.5h", 5400), (None, None),
                                       ("", None), (" None ", None), ("none", None), (" 2 M ", 120)])
def test_parse_time_limit(text, want):
    assert parse_time_limit(text) == want


@pytest.mark.parametrize("text", ["ten minutes", "-5m", "0"])
def test_parse_time_limit_refuses_nonsense(text):
    with pytest.raises(ValueError, match="time limit"):
        parse_time_limit(text)


def _trial(name, oof, acc=0.5):
    return Trial(Candidate((name,)), acc, 0.0, [acc], 1.0, oof=oof)


def test_members_are_added_only_while_the_votes_log_loss_falls():
    y = np.array([0, 1, 0, 1])
    good = _trial("a", np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6]]), 1.0)
    complementary = _trial("b", np.array([[0.7, 0.3], [0.1, 0.9], [0.9, 0.1], [0.3, 0.7]]), 1.0)
    wrong = _trial("c", np.array([[0.1, 0.9], [0.9, 0.1], [0.1, 0.9], [0.9, 0.1]]), 0.0)
    assert select_members([good, complementary, wrong], y, 3) == [good, complementary]
    assert select_members([good, wrong], y, 3) == [good]


def test_vote_and_stack_maths_against_numpy_and_sklearn():
    rng = np.random.default_rng(1)
    P1, P2 = rng.dirichlet(np.ones(3), 40), rng.dirichlet(np.ones(3), 40)
    y = rng.integers(0, 3, 40)
    np.testing.assert_allclose(combine("vote", [P1, P2], [3, 1]), 0.75 * P1 + 0.25 * P2)
    meta = fit_meta([P1, P2], y, 3, C=1.0)
    Z = np.hstack([P1, P2])
    sk = LogisticRegression(C=1.0, max_iter=2000).fit(Z, y)
    np.testing.assert_allclose(combine("stack", [P1, P2], meta=meta), sk.predict_proba(Z), atol=1e-6)
    np.testing.assert_allclose(combine("stack", [P1, P2], meta=meta), softmax(Z @ meta["coef"].T + meta["intercept"]))
    with pytest.raises(ValueError, match="unknown ensemble kind"):
        combine("median", [P1])


def test_stacking_accuracy_is_cross_validated_over_the_out_of_fold_probabilities():
    rng = np.random.default_rng(2)
    y = np.repeat(np.arange(2), 20)
    folds = make_folds(y, 2, 0)
    members = [_trial("a", rng.dirichlet(np.ones(2), 40)), _trial("b", rng.dirichlet(np.ones(2), 40))]
    want = np.zeros(40, bool)
    for tr, va in folds:
        m = LogisticRegression(C=1.0, max_iter=2000).fit(np.hstack([t.oof[tr] for t in members]), y[tr])
        want[va] = m.predict(np.hstack([t.oof[va] for t in members])) == y[va]
    assert stack_cv_accuracy(members, y, folds) == pytest.approx(want.mean())


def _informative(rng, y, k, strength):
    z = rng.normal(size=(len(y), k))
    z[np.arange(len(y)), y] += strength
    return softmax(z)


def test_stacking_accuracy_never_sees_the_held_out_fold():
    # informative members: here a meta-head that also saw the held-out fold scores 0.69, the
    # honest one 0.56 (pure-noise members score alike either way, so they cannot tell them apart)
    rng = np.random.default_rng(2)
    y = np.repeat(np.arange(3), 12)
    folds = make_folds(y, 3, 0)
    members = [_trial("a", _informative(rng, y, 3, 1.0)), _trial("b", _informative(rng, y, 3, 0.7))]
    Z = np.hstack([t.oof for t in members])
    honest = np.zeros(len(y), bool)
    for tr, va in folds:
        honest[va] = LogisticRegression(C=1.0, max_iter=2000).fit(Z[tr], y[tr]).predict(Z[va]) == y[va]
    leaky = LogisticRegression(C=1.0, max_iter=2000).fit(Z, y).predict(Z) == y
    assert leaky.mean() - honest.mean() > 0.1  # the data tell the two apart
    assert stack_cv_accuracy(members, y, folds) == pytest.approx(honest.mean())


@pytest.mark.parametrize("kind", ["vote", "stack"])
def test_an_ensemble_saves_loads_and_predicts_identically(tmp_path, kind):
    b = make_blocks()
    out = search_fit(b, candidates=CANDIDATES[:3], ensemble=kind, max_members=2)
    model = out.model
    assert isinstance(model, Ensemble) and model.kind == kind and len(model.members) == 2
    model.save(tmp_path / "m")
    loaded = wordsight.load(tmp_path / "m")  # the one loader; an ensemble folder gives an Ensemble
    assert isinstance(loaded, Ensemble) and loaded.kind == kind
    test = make_blocks(seed=0).take(np.arange(0, 36, 5))
    np.testing.assert_array_equal(loaded.predict_proba(test), model.predict_proba(test))
    assert list(loaded.predict(test)) == list(model.predict(test))
    # the ensemble is its members combined, each reading its own encoders
    parts = [m.predict_proba(subset_blocks(test, m.encoder_names)) for m in model.members]
    want = combine(kind, parts, model.weights, model.meta)
    np.testing.assert_allclose(model.predict_proba(test), want, atol=1e-12)


def test_search_fit_keeps_the_single_best_when_no_ensemble_is_wanted(tmp_path):
    b = make_blocks()
    out = search_fit(b, candidates=CANDIDATES[:3], ensemble="none")
    assert out.chosen == "single" and isinstance(out.model, Classifier)
    assert out.members == [out.result.best.candidate.name]
    assert tuple(out.model.encoder_names) == out.result.best.candidate.encoders
    out.model.save(tmp_path / "m")
    (tmp_path / "m" / "leaderboard.csv").write_text("rank\n")  # written beside by `fit --search`: not a stray file
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Classifier.load(tmp_path / "m")


def test_an_edited_ensemble_member_or_meta_head_is_refused(tmp_path):
    b = make_blocks()
    model = search_fit(b, candidates=CANDIDATES[:3], ensemble="stack", max_members=2).model
    model.save(tmp_path / "m")
    meta = tmp_path / "m" / "meta.safetensors"
    meta.write_bytes(meta.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(ModelFolderError, match="meta.safetensors: checksum mismatch"):
        wordsight.load(tmp_path / "m")
    model.save(tmp_path / "n")
    head = tmp_path / "n" / "members" / "1" / "head.safetensors"
    head.write_bytes(head.read_bytes() + b"x")
    with pytest.raises(ModelFolderError, match="checksum mismatch"):
        wordsight.load(tmp_path / "n")


def test_search_result_without_a_complete_trial_says_why():
    res = SearchResult([Trial(Candidate((E0,)), 0.0, 0.0, [], 0.0, "failed: ValueError: boom")], ["a", "b"],
                       np.array([0, 1]), [], "quick", 0.0)
    with pytest.raises(RuntimeError, match="boom"):
        res.best


def test_thorough_samples_the_larger_space_with_successive_halving():
    b = make_blocks()
    b.views = {1: make_blocks(seed=0), 2: make_blocks(seed=0)}  # views: augmentation is searched
    res = search(b, mode="thorough", candidates=CANDIDATES[:2], n_trials=8, seed=0)
    assert 2 < len(res.trials) <= 8 and [t.candidate for t in res.trials[:2]] == CANDIDATES[:2]
    sampled = [t.candidate for t in res.trials[2:]]
    assert all(c.fusion in ("image", "concat") and c.head in ("logistic", "svm", "mlp", "knn") for c in sampled)
    assert {c.augment for c in sampled} <= {0, 2}
    for t in res.trials:  # a pruned candidate stopped before its last fold and has no out-of-fold rows
        assert t.complete == (t.oof is not None) and (t.complete or t.state.startswith(("pruned", "failed")))


def test_screening_rows_are_a_stratified_sorted_subsample():
    from wordsight.training.search import screening_rows

    y = np.repeat(np.arange(3), [30, 20, 10])
    rows = screening_rows(y, 30, seed=0)
    assert len(rows) == 30 and (np.diff(rows) > 0).all()
    assert np.bincount(y[rows]).tolist() == [15, 10, 5]
    assert screening_rows(y, 60, seed=0) is None and screening_rows(y, 59, seed=0) is not None


def test_a_large_set_screens_stage_one_on_a_subsample_and_cross_validates_stage_two_on_all(monkeypatch):
    """Stage one (the logistic head on every encoder set) runs on a stratified subsample and only
    ranks the sets; stage two (the MLP on the best sets) runs on every image and is what can win."""
    import wordsight.training.search as search_mod

    monkeypatch.setattr(search_mod, "SCREEN_IMAGES", 21)
    monkeypatch.setattr(search_mod, "STAGE_TWO_SETS", 1)
    b = make_blocks(n_per_class=12)  # 36 images
    res = search(b, mode="quick", pool=[E0, E1], seed=0)
    screened = [t for t in res.trials if t.screened]
    assert [t.candidate.encoders for t in screened] == [(E0,), (E1,), (E0, E1)]
    assert all(t.state == "screened on 21 images" and t.oof is None for t in screened)
    rows = search_mod.screening_rows(res.y, 21, 0)
    classes = res.classes
    want = cross_validate(screened[0].candidate, b.take(rows), res.y[rows], classes, make_folds(res.y[rows], 3, 0),
                          base={"random_state": 0, "quiet": True})
    assert screened[0].accuracy == pytest.approx(want.accuracy)
    top = max(screened, key=lambda t: (t.accuracy, -t.fit_seconds))
    (full,) = [t for t in res.trials if not t.screened]
    assert full.candidate == Candidate(top.candidate.encoders, head="mlp", hidden=512)
    assert full.complete and full.oof.shape == (36, 3) and res.best is full
    board = res.leaderboard()
    assert [r["model"] for r in board if r["rank"] != ""] == [full.candidate.name] and board[0]["rank"] == 1
    unranked = [r["cv_accuracy"] for r in board[1:]]
    assert all(r["state"] == "screened on 21 images" for r in board[1:]) and unranked == sorted(unranked, reverse=True)


def test_a_search_stopped_before_any_full_trial_keeps_the_best_screened_one():
    screened = [Trial(Candidate((E0,)), 0.7, 0.0, [0.7], 1.0, "screened on 6000 images"),
                Trial(Candidate((E1,)), 0.8, 0.0, [0.8], 1.0, "screened on 6000 images"),
                Trial(Candidate((E0, E1), head="mlp", hidden=512), 0.9, 0.0, [0.9], 9.0, "stopped after fold 1: time limit")]
    res = SearchResult(screened, ["a", "b"], np.array([0, 1]), [], "quick", 0.0)
    assert res.ranked() == [] and res.best is screened[1]


def test_a_screened_trial_that_scores_higher_never_wins_over_a_complete_one():
    # who wins, not only who was screened: a subsample's score is not comparable with a full one
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1], 6)
    oof = rng.dirichlet(np.ones(2), 12)
    trials = [Trial(Candidate((E0,)), 0.95, 0.0, [0.95], 1.0, "screened on 6000 images"),
              Trial(Candidate((E0, E1), head="mlp", hidden=512), 0.80, 0.0, [0.8], 5.0, oof=oof),
              Trial(Candidate((E1,)), 0.99, 0.0, [0.99], 0.5, "screened on 6000 images"),
              Trial(Candidate((E1,), head="mlp", hidden=512), 0.85, 0.0, [0.85], 9.0, oof=oof),
              Trial(Candidate((E0,), head="knn"), 0.97, 0.0, [0.97], 0.1, "stopped after fold 1: time limit")]
    res = SearchResult(trials, ["a", "b"], y, make_folds(y, 3, 0), "quick", 0.0)
    assert res.best is trials[3]
    assert res.ranked() == [trials[3], trials[1]]
    board = res.leaderboard()
    assert [(r["rank"], r["model"]) for r in board[:2]] == [(1, trials[3].candidate.name), (2, trials[1].candidate.name)]
    assert all(r["rank"] == "" for r in board[2:])
    from wordsight.training.autofit import rank_options

    (single,) = rank_options(res, ensemble="none")
    assert single == ("single", 0.85, [trials[3]])


@pytest.mark.parametrize("accs, ensemble, want", [
    ((0.8, 0.8, 0.8), "auto", "single"),   # ties go to the simpler
    ((0.8, 0.81, 0.81), "auto", "vote"),
    ((0.8, 0.79, 0.82), "auto", "stack"),  # who wins, not only who took part
    ((0.9, 0.7, 0.6), "stack", "stack"),   # asked for: taken although it scores lower
    ((0.9, 0.7, 0.6), "vote", "vote"),
    ((0.7, None, None), "stack", "single"),  # asked for, but fewer than two members: the single one
])
def test_the_winner_is_the_best_option_and_ties_go_to_the_simpler(accs, ensemble, want):
    from wordsight.training.autofit import choose_option

    kinds = [("single", accs[0]), ("vote", accs[1]), ("stack", accs[2])]
    options = [(k, a, [k]) for k, a in kinds if a is not None]
    chosen, acc, members = choose_option(options, ensemble)
    assert chosen == want and acc == dict(kinds)[want] and members == [want]


def test_ties_between_complete_trials_go_to_the_faster_fit():
    oof = np.full((4, 2), 0.5)
    slow = Trial(Candidate((E0, E1)), 0.9, 0.0, [0.9], 8.0, oof=oof)
    fast = Trial(Candidate((E1,)), 0.9, 0.0, [0.9], 2.0, oof=oof)
    worse = Trial(Candidate((E0,)), 0.89, 0.0, [0.89], 0.1, oof=oof)
    res = SearchResult([slow, worse, fast], ["a", "b"], np.array([0, 1, 0, 1]), [], "quick", 0.0)
    assert res.best is fast and res.ranked() == [fast, slow, worse]


def test_the_sampled_space_gives_pixels_alone_image_fusion():
    import optuna

    from wordsight.training.search import suggest

    fixed = optuna.trial.FixedTrial({"encoders": "pixels-32", "fusion": "concat", "head": "knn"})
    assert suggest(fixed, ["pixels-32", E0], augment=False).fusion == "image"
    fixed = optuna.trial.FixedTrial({"encoders": "pixels-32+" + E0, "fusion": "concat", "head": "knn"})
    assert suggest(fixed, ["pixels-32", E0], augment=False).fusion == "concat"


def test_screening_keeps_every_class_even_a_rare_one():
    from wordsight.training.search import screening_rows

    y = np.array([0] * 1000 + [1] * 4)
    rows = screening_rows(y, 100, seed=1)
    assert np.bincount(y[rows]).tolist() == [100, 3]  # 99.6 -> 100; the rare class gets the folds' 3


@pytest.mark.parametrize("n,screened", [(6000, False), (6001, True)])
def test_screening_starts_above_six_thousand_training_images(n, screened):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    emb = {E0: (y[:, None] + rng.normal(size=(n, 4))).astype(np.float32),
           E1: rng.normal(size=(n, 3)).astype(np.float32)}
    b = FeatureBlocks([Sample(f"img/{i}.png", f"c{v}") for i, v in enumerate(y)], emb)
    res = search(b, mode="quick", pool=[E0, E1], n_trials=1, seed=0)
    (trial,) = res.trials
    assert trial.state == ("screened on 6000 images" if screened else "complete")
