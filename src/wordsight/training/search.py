"""Model search: encoders and their concatenations, fusions, heads, penalties and augmentation,
scored by cross-validation on the training images only.

Features are extracted once for the whole pool of encoders (and, where augmentation is searched,
its views), through the shared feature cache; every candidate is then a few head fits on subsets
of those blocks (:mod:`.block_sets`), so a search costs head fits, not encoder passes. The folds
are the same for every candidate, which makes the out-of-fold probabilities comparable and lets
:mod:`.ensemble` vote or stack them. Optuna drives the search: ``quick`` evaluates a short fixed
list of candidates; ``thorough`` evaluates that list, then samples the larger space (TPE) with
successive halving over the folds (a candidate whose first folds are clearly worse is stopped),
until ``time_limit``. Above ``SCREEN_IMAGES`` training images the quick list's first stage only
screens the encoder sets on a stratified subsample (successive halving over the data). Test
images are never seen: the search takes training data only.
"""
from __future__ import annotations

import csv
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from itertools import combinations

import numpy as np

from ..estimator.block_sets import subset_blocks
from ..estimator.candidates import Candidate
from ..estimator.feature_blocks import FeatureBlocks

SEARCH_MODES = ("quick", "thorough")
# pixels-32 (the thumbnail's own values, no weights) costs no encoder pass; cross-validation decides
# whether it earns a place: on all of Fashion-MNIST the search's MLP on lite0 + mobilenetv2 + pixels
# scored 93.47% on the test images where the two CNNs alone scored 92.41% (docs/benchmarks.md).
QUICK_POOL = ("efficientnet-lite0", "mobilenetv2", "pixels-32")
# EfficientNet-Lite2 is left out by default: 2-3x Lite0's cost per image on 2 cores (not in docs/benchmarks.md).
THOROUGH_POOL = ("efficientnet-lite0", "efficientnet-lite1", "mobilenetv2", "pixels-32")
AUGMENT_VIEWS = 2  # augmented views per training image when the search turns augmentation on
FOLDS = 3
# Logistic penalty of the quick list: on 2,000 Fashion-MNIST training images (MobileNetV2) C = 0.01
# scored 87.3% on 1,000 test images where 0.001 scored 86.1% (both encoders: 87.4% for either).
QUICK_C = 0.01
STAGE_TWO_SETS = 2  # encoder sets that get the MLP head in a quick search
# Refits after the search (the winner, the ensemble's members) take about this many times one
# fold's fit (the full training set is 1.5x a fold's): the search stops early enough for them.
REFIT_RESERVE = 1.6
# Stage one of a large training set is screened on a stratified subsample of this many images
# (successive halving over the data): it only ranks the encoder sets for stage two, and one
# logistic fit on 40,000 Fashion-MNIST images took 500-1,000 s on 2 cores where 4,000 take ~10 s.
SCREEN_IMAGES = 6000
SCREENED = "screened on {n} images"  # a screened trial's state


def is_screened(state: str) -> bool:
    """Whether a trial's (or a leaderboard row's) state says it was screened on a subsample."""
    return str(state).startswith(SCREENED.split(" {")[0])


@dataclass
class Trial:
    """A candidate's cross-validation: mean accuracy over the folds, seconds per fit, and the
    out-of-fold probabilities (``None`` unless every fold ran)."""

    candidate: Candidate
    accuracy: float
    std: float
    fold_accuracies: list[float]
    fit_seconds: float  # mean seconds of one fit on the training folds
    state: str = "complete"  # or "pruned after fold k", "failed: ..."
    oof: np.ndarray | None = field(default=None, repr=False)

    @property
    def complete(self) -> bool:
        return self.state == "complete"

    @property
    def screened(self) -> bool:
        """Cross-validated on a subsample only: ranks encoder sets for stage two, never chosen."""
        return is_screened(self.state)


@dataclass
class SearchResult:
    """Every trial, the folds and labels they share, and what the search cost."""

    trials: list[Trial]
    classes: list
    y: np.ndarray  # class index per training image (the order of the blocks)
    folds: list[tuple[np.ndarray, np.ndarray]]
    mode: str
    seconds: float
    extra_rows: list[dict] = field(default_factory=list)  # ensembles, added by the caller

    def ranked(self) -> list[Trial]:
        """Complete trials, best first (ties: the faster fit)."""
        return sorted((t for t in self.trials if t.complete), key=lambda t: (-t.accuracy, t.fit_seconds))

    @property
    def best(self) -> Trial:
        """The best complete trial; if the time limit left none, the best screened one."""
        ranked = self.ranked() or sorted((t for t in self.trials if t.screened),
                                         key=lambda t: (-t.accuracy, t.fit_seconds))
        if not ranked:
            raise RuntimeError("no candidate completed its cross-validation: " +
                               "; ".join(f"{t.candidate.name}: {t.state}" for t in self.trials[:3]))
        return ranked[0]

    def leaderboard(self) -> list[dict]:
        """Rows of the leaderboard: every trial and any ensemble, best first."""
        rows = [{"model": t.candidate.name, "kind": "single", "encoders": "+".join(t.candidate.encoders),
                 "fusion": t.candidate.fusion, "head": t.candidate.head,
                 "C": "" if t.candidate.C is None else t.candidate.C, "hidden": t.candidate.hidden or "",
                 "augment": t.candidate.augment, "cv_accuracy": round(t.accuracy, 4), "cv_std": round(t.std, 4),
                 "fit_seconds": round(t.fit_seconds, 2), "state": t.state, "members": ""}
                for t in self.ranked() + [t for t in self.trials if not t.complete]]
        # stable sort: rows that tie once rounded keep the ranked order (unrounded keys), so row 1 is ``best``
        rows += self.extra_rows
        done = sorted((r for r in rows if r["state"] == "complete"), key=lambda r: (-r["cv_accuracy"], r["fit_seconds"]))
        # then the screened rows, best first (they ranked the sets for stage two), then the rest
        rest = sorted((r for r in rows if r["state"] != "complete"),
                      key=lambda r: (not is_screened(r["state"]), -r["cv_accuracy"]))
        return [{"rank": i + 1 if r["state"] == "complete" else "", **r} for i, r in enumerate(done + rest)]

    def write_csv(self, path) -> str:
        rows = self.leaderboard()
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["rank"])
            w.writeheader()
            w.writerows(rows)
        return str(path)

    def table(self, top: int = 15) -> str:
        """The leaderboard as a plain-text table (the CLI prints it)."""
        rows = self.leaderboard()[:top]
        width = max([len(r["model"]) for r in rows] + [5])
        lines = [f"{'rank':>4}  {'model':<{width}}  {'cv acc':>7}  {'+-':>6}  {'fit s':>7}  state"]
        for r in rows:
            lines.append(f"{r['rank']!s:>4}  {r['model']:<{width}}  {r['cv_accuracy']:>7.4f}  {r['cv_std']:>6.4f}  "
                         f"{r['fit_seconds']:>7.2f}  {r['state']}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"mode": self.mode, "seconds": round(self.seconds, 2), "folds": len(self.folds),
                "n_images": int(len(self.y)), "leaderboard": self.leaderboard(),
                "best": asdict(self.best.candidate) if self.ranked() else None}


def encoder_sets(pool) -> list[tuple[str, ...]]:
    """Every non-empty subset of ``pool`` (order kept): single encoders first, then concatenations."""
    pool = list(pool)
    return [c for k in range(1, len(pool) + 1) for c in combinations(pool, k)]


def quick_candidates(pool) -> list[Candidate]:
    """Stage 1 of the fixed list ``quick`` evaluates (and ``thorough`` starts with): the logistic
    head, fast, on every encoder set; :func:`stage_two` follows."""
    return [Candidate(enc, head="logistic", C=QUICK_C) for enc in encoder_sets(pool)]


def stage_two(done: list["Trial"], n_sets: int = STAGE_TWO_SETS) -> list[Candidate]:
    """Stage 2: the MLP head (several times the logistic head's cost) on the encoder sets that
    scored best in stage 1, a successive-halving step by hand over a list of two rungs."""
    ranked = sorted((t for t in done if t.complete or t.screened), key=lambda t: (-t.accuracy, t.fit_seconds))
    return [Candidate(t.candidate.encoders, head="mlp", hidden=512) for t in ranked[:n_sets]]


def screening_rows(y: np.ndarray, n: int, seed: int) -> np.ndarray | None:
    """Sorted row indices of a stratified subsample of about ``n`` rows: each class its share,
    and at least as many as the folds (or all it has) so that every class is cross-validated.
    None when ``y`` has no more than ``n`` rows."""
    if len(y) <= n:
        return None
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    quota = counts * (n / len(y))
    take = np.floor(quota).astype(int)
    take[np.argsort(take - quota)[: n - int(take.sum())]] += 1  # the largest remainders round up
    take = np.maximum(take, np.minimum(counts, FOLDS))
    rows = [rng.choice(np.flatnonzero(y == c), t, replace=False) for c, t in zip(classes, take)]
    return np.sort(np.concatenate(rows))


def suggest(trial, pool, augment: bool) -> Candidate:
    """A candidate of the ``thorough`` space, sampled by Optuna."""
    from ..encoders import get_config

    sets = ["+".join(s) for s in encoder_sets(pool)]
    params = {"encoders": trial.suggest_categorical("encoders", sets),
              "fusion": trial.suggest_categorical("fusion", ["image", "concat"]),
              "head": trial.suggest_categorical("head", ["logistic", "svm", "mlp", "knn"])}
    if params["head"] in ("logistic", "svm"):
        params["C"] = trial.suggest_categorical("C", [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0])
    if params["head"] == "mlp":
        params["hidden"] = trial.suggest_categorical("hidden", [256, 512, 1024])
    if not any(get_config(e).has_imagenet_head for e in params["encoders"].split("+")):
        params["fusion"] = "image"  # the text block reads an ImageNet head
    params["augment"] = trial.suggest_categorical("augment", [0, AUGMENT_VIEWS]) if augment else 0
    return Candidate.from_trial(params)


@contextmanager
def torch_threads(n: int):
    """Torch and BLAS on ``n`` threads for the duration (head fits in a search: many small fits,
    where threads only fight). On the 2 shared cores (load ~16) an MLP head on 2,000 x 2,560
    features took 52 s on one torch thread and 257 s on two; the logistic head on the same
    features 59-149 s with every BLAS thread, where 2,000 x 1,280 on one thread took 5-9 s."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(n, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)


def _labels(blocks: FeatureBlocks) -> tuple[list, np.ndarray]:
    labels = blocks.labels
    if any(lab is None for lab in labels):
        raise ValueError(f"{sum(lab is None for lab in labels)} training image(s) have no label")
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise ValueError(f"at least two classes are needed to search, got {classes}")
    index = {c: i for i, c in enumerate(classes)}
    return classes, np.asarray([index[v] for v in labels], np.int64)


def make_folds(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds shared by every candidate (fewer when a class is too small)."""
    from sklearn.model_selection import StratifiedKFold

    k = int(min(folds, np.bincount(y).min()))
    if k < 2:
        raise ValueError("the search needs at least two training images of every class (cross-validation)")
    return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def cross_validate(candidate: Candidate, blocks: FeatureBlocks, y, classes, folds, *, base: dict,
                   report=None) -> Trial:
    """Fit ``candidate`` on each fold's training part, predict its held-out part.
    ``report(fold, mean_accuracy_so_far)`` may raise to stop (successive halving)."""
    from ..estimator.classifier import Classifier

    cand_blocks = subset_blocks(blocks, candidate.encoders, views=candidate.augment)
    oof = np.zeros((len(y), len(classes)))
    accs, seconds = [], []
    for i, (tr, va) in enumerate(folds):
        clf = Classifier(**base).set_params(**candidate.params(), calibration=None)  # a trial keeps no sets' scores
        t0 = time.perf_counter()
        clf.fit(cand_blocks.take(tr))
        seconds.append(time.perf_counter() - t0)
        P = np.zeros((len(va), len(classes)))
        cols = [classes.index(c) for c in clf.class_names]  # a fold may lack a class
        P[:, cols] = clf.predict_proba(cand_blocks.take(va))
        oof[va] = P
        accs.append(float(np.mean(P.argmax(1) == y[va])))
        if report is not None:
            report(i, float(np.mean(accs)), Trial(candidate, float(np.mean(accs)), float(np.std(accs)), accs,
                                                   float(np.mean(seconds)), f"pruned after fold {i + 1}"))
    return Trial(candidate, float(np.mean(accs)), float(np.std(accs)), accs, float(np.mean(seconds)), oof=oof)


def search(blocks: FeatureBlocks, *, mode: str = "quick", pool=None, time_limit: float | None = None,
           folds: int = FOLDS, seed: int = 0, base: dict | None = None, n_trials: int | None = None,
           candidates: list[Candidate] | None = None, log=None) -> SearchResult:
    """Cross-validate candidates on the training ``blocks`` (extracted for every encoder of
    ``pool``; with augmented views when ``thorough`` searches augmentation) and rank them.

    ``time_limit`` (seconds) stops starting new candidates once the time left would not cover
    refitting the best ones; ``candidates`` replaces the fixed list; ``base`` holds Classifier
    parameters every candidate shares (cache, small_input, ...)."""
    import optuna

    if mode not in SEARCH_MODES:
        raise ValueError(f"unknown search mode {mode!r}: choose one of {', '.join(SEARCH_MODES)}")
    t_start = time.perf_counter()
    pool = list(pool or blocks.embeddings)
    classes, y = _labels(blocks)
    fold_idx = make_folds(y, folds, seed)
    base = {"random_state": seed, "quiet": True, **(base or {})}
    fixed = list(candidates) if candidates is not None else quick_candidates(pool)
    staged = candidates is None  # stage two is appended once stage one is done
    n_fixed = len(fixed) + (min(STAGE_TWO_SETS, len(fixed)) if staged else 0)
    with_views = mode == "thorough" and len(blocks.views) >= AUGMENT_VIEWS
    trials: dict[Candidate, Trial] = {}
    log = log or (lambda msg: None)
    n_screened = len(fixed) if staged else 0  # stage one's candidates
    screen = screening_rows(y, SCREEN_IMAGES, seed) if n_screened else None
    if screen is not None:
        screen_blocks, screen_folds = blocks.take(screen), make_folds(y[screen], folds, seed)
        log(f"stage one screens encoder sets on {len(screen)} of the {len(y)} training images")

    def objective(trial):
        if staged and trial.number == len(fixed):
            fixed.extend(c for c in stage_two(list(trials.values())) if c not in trials)
        cand = fixed[trial.number] if trial.number < len(fixed) else suggest(trial, pool, with_views)
        if cand in trials:  # a sampled repeat: the same folds give the same answer
            if not trials[cand].complete:
                raise optuna.TrialPruned()
            return trials[cand].accuracy

        def report(fold, acc, partial):
            trials[cand] = partial
            trial.report(acc, fold)
            if time_limit is not None and fold < len(fold_idx) - 1 and time.perf_counter() - t_start >= time_limit:
                partial.state = f"stopped after fold {fold + 1}: time limit"
                raise optuna.TrialPruned()
            if mode == "thorough" and fold < len(fold_idx) - 1 and trial.should_prune():
                raise optuna.TrialPruned()

        try:
            with torch_threads(1):
                if screen is not None and trial.number < n_screened:
                    result = cross_validate(cand, screen_blocks, y[screen], classes, screen_folds, base=base)
                    result.state, result.oof = SCREENED.format(n=len(screen)), None
                else:
                    result = cross_validate(cand, blocks, y, classes, fold_idx, base=base, report=report)
        except optuna.TrialPruned:
            log(f"  {cand.name}: {trials[cand].state}")
            raise
        except (ValueError, RuntimeError, np.linalg.LinAlgError) as e:
            trials[cand] = Trial(cand, 0.0, 0.0, [], 0.0, f"failed: {type(e).__name__}: {e}")
            raise optuna.TrialPruned() from None
        trials[cand] = result
        log(f"  {cand.name}: cv accuracy {result.accuracy:.4f} (+-{result.std:.4f}), {result.fit_seconds:.1f} s per fit")
        return result.accuracy

    def stop_in_time(study, _trial):
        if time_limit is None:
            return
        done = sorted((t for t in trials.values() if t.complete), key=lambda t: -t.accuracy)[:3]
        reserve = REFIT_RESERVE * sum(t.fit_seconds for t in done)
        if time.perf_counter() - t_start + reserve >= time_limit:
            study.stop()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed)
    pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    if n_trials is None:
        n_trials = n_fixed if mode == "quick" else n_fixed + 40
    remaining = None if time_limit is None else max(1.0, time_limit - (time.perf_counter() - t_start))
    study.optimize(objective, n_trials=n_trials, timeout=remaining, callbacks=[stop_in_time], catch=())
    return SearchResult(list(trials.values()), classes, y, fold_idx, mode, time.perf_counter() - t_start)
