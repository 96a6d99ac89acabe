"""``search_fit``: from labelled training images to the best model the search finds, in one call.

1. extract the features of every encoder of the pool once (cached; with augmented views for a
   ``thorough`` search);
2. cross-validate candidates on those features (:mod:`.search`);
3. build ensembles from the out-of-fold probabilities of the best candidates: members chosen
   greedily (each added member must lower the soft vote's out-of-fold log-loss, as in Caruana et
   al.'s ensemble selection, without replacement), then soft voting and stacking scored on the
   same folds (the stacking meta-head by cross-validation over the out-of-fold probabilities);
4. refit the winner (best cross-validated accuracy among the single best candidate, the vote and
   the stack; ties go to the simpler) on all training images.

Only training images are read; the caller scores the result on its own test set.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace

import numpy as np

from ..estimator.block_sets import subset_blocks
from ..estimator.ensemble import Ensemble, combine, fit_meta
from ..estimator.feature_blocks import FeatureBlocks
from .search import AUGMENT_VIEWS, QUICK_POOL, SEARCH_MODES, THOROUGH_POOL, SearchResult, Trial, search, torch_threads

ENSEMBLE_CHOICES = ("auto", "vote", "stack", "none")
SELECTION_POOL = 10  # members are chosen among the best this many candidates
MAX_MEMBERS = 3


def parse_time_limit(text) -> float | None:
    """Seconds from '600', '90s', '10m', '1.5h' (None for None/'' /'none')."""
    if text is None or str(text).strip().lower() in ("", "none"):
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(text).lower())
    if not m:
        raise ValueError(f"time limit {text!r}: give seconds, or a number with s, m or h (e.g. 10m)")
    value = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    if value <= 0:
        raise ValueError(f"time limit {text!r} must be positive")
    return value


def default_pool(mode: str) -> list[str]:
    """The packaged encoders a search tries by default (those whose weights are installed)."""
    from ..encoders import get_config

    pool = [e for e in (QUICK_POOL if mode == "quick" else THOROUGH_POOL) if get_config(e).available()]
    return pool or list(QUICK_POOL[:1])


@dataclass
class SearchOutcome:
    """The refitted winner (a Classifier or an Ensemble), the search's trials, what was chosen."""

    model: object
    result: SearchResult
    chosen: str  # "single", "vote" or "stack"
    members: list[str]
    seconds: float
    blocks: FeatureBlocks | None = field(default=None, repr=False)  # the training features (for refit)
    base: dict = field(default_factory=dict, repr=False)
    options: list = field(default_factory=list, repr=False)  # rank_options(): what could have been chosen

    def to_json(self) -> dict:
        return {**self.result.to_json(), "chosen": self.chosen, "members": self.members,
                "total_seconds": round(self.seconds, 2)}


def _log_loss(P: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(P[np.arange(len(y)), y], 1e-12, None))))


def select_members(ranked: list[Trial], y: np.ndarray, max_members: int = MAX_MEMBERS) -> list[Trial]:
    """Greedy ensemble selection on out-of-fold probabilities: start from the best candidate,
    add the one that lowers the equal-weight vote's log-loss most, stop when none does."""
    pool = [t for t in ranked[:SELECTION_POOL] if t.oof is not None]
    chosen = pool[:1]
    while pool and len(chosen) < max_members:
        current = _log_loss(combine("vote", [t.oof for t in chosen]), y)
        scored = [(_log_loss(combine("vote", [t.oof for t in chosen + [c]]), y), i)
                  for i, c in enumerate(pool) if c not in chosen]
        if not scored or min(scored)[0] >= current:
            break
        chosen.append(pool[min(scored)[1]])
    return chosen


def stack_cv_accuracy(members: list[Trial], y, folds, seed: int = 0) -> float:
    """Accuracy of the stacking meta-head, itself cross-validated over the out-of-fold probabilities."""
    correct = np.zeros(len(y), bool)
    k = int(y.max()) + 1
    for tr, va in folds:
        meta = fit_meta([t.oof[tr] for t in members], y[tr], k, seed=seed)
        P = combine("stack", [t.oof[va] for t in members], meta=meta)
        correct[va] = P.argmax(1) == y[va]
    return float(correct.mean())


def _ensemble_row(kind: str, members: list[Trial], acc: float, seconds: float) -> dict:
    return {"model": f"{kind} of {len(members)} (members below)", "kind": kind, "encoders": "", "fusion": "",
            "head": kind, "C": "", "hidden": "", "augment": "", "cv_accuracy": round(acc, 4), "cv_std": 0.0,
            "fit_seconds": round(seconds, 2), "state": "complete",
            "members": " ; ".join(t.candidate.name for t in members)}


def search_fit(X, y=None, *, mode: str = "quick", encoders=None, time_limit=None, ensemble: str = "auto",
               max_members: int = MAX_MEMBERS, folds: int = 3, seed: int = 0, cache=None, small_input="auto",
               batch_size=None, quiet: bool = True, n_trials: int | None = None, candidates=None,
               log=None) -> SearchOutcome:
    """Search, ensemble and refit on the training images ``X`` (see the module doc).
    ``time_limit``: seconds or '10m' for the whole call, extraction included."""
    from ..estimator.augment import Augment
    from ..estimator.feature_blocks import add_views, extract_blocks, relabel
    from ..io.sources import open_source

    if mode not in SEARCH_MODES:
        raise ValueError(f"unknown search mode {mode!r}: choose one of {', '.join(SEARCH_MODES)}")
    if ensemble not in ENSEMBLE_CHOICES:
        raise ValueError(f"unknown ensemble {ensemble!r}: choose one of {', '.join(ENSEMBLE_CHOICES)}")
    t0 = time.perf_counter()
    limit = parse_time_limit(time_limit) if isinstance(time_limit, str) else time_limit
    log = log or (lambda msg: None)
    pool = list(encoders) if encoders else None
    opts = {"cache": cache, "batch_size": batch_size, "quiet": quiet, "small_input": small_input}
    if isinstance(X, FeatureBlocks):  # extracted already (views included, if augmentation is to be searched)
        blocks = X if y is None else replace(X, samples=[replace(s, label=v) for s, v in zip(X.samples, y)])
        pool = list(encoders) if encoders else list(blocks.embeddings)
    else:
        pool = pool or default_pool(mode)
        src = relabel(X, y) if y is not None else open_source(X)
        log(f"extracting features of {len(src.samples)} training images for {', '.join(pool)}")
        blocks = extract_blocks(src, pool, **opts)
        if len(blocks) and mode == "thorough":
            log(f"extracting {AUGMENT_VIEWS} augmented views per training image")
            blocks = add_views(blocks, src, AUGMENT_VIEWS, Augment(), **opts)
    if not len(blocks):
        raise ValueError("no training image could be read: " +
                         "; ".join(f"{p.path}: {p.reason}" for p in blocks.failures[:5]))
    base = {**opts, "random_state": seed}
    left = None if limit is None else max(1.0, limit - (time.perf_counter() - t0))
    log(f"searching ({mode}, {folds}-fold cross-validation on {len(blocks)} training images)")
    result = search(blocks, mode=mode, pool=pool, time_limit=left, folds=folds, seed=seed, base=base,
                    n_trials=n_trials, candidates=candidates, log=log)
    options = rank_options(result, ensemble, max_members, seed)
    chosen, acc, members = choose_option(options, ensemble)
    log(f"chosen: {chosen} (cv accuracy {acc:.4f}); refitting on all {len(blocks)} training images")
    model = refit(chosen, members, result, blocks, base, acc=acc, seed=seed)
    return SearchOutcome(model, result, chosen, [t.candidate.name for t in members], time.perf_counter() - t0,
                         blocks, base, options)


def rank_options(result: SearchResult, ensemble: str = "auto", max_members: int = MAX_MEMBERS,
                 seed: int = 0) -> list[tuple[str, float, list[Trial]]]:
    """(kind, cross-validated accuracy, members) of the single best candidate and, unless
    ``ensemble='none'``, of the soft vote and the stack of the selected members; also adds the
    ensembles' rows to the leaderboard."""
    ranked = result.ranked()
    best = result.best
    options = [("single", best.accuracy, [best])]
    if ensemble == "none":
        return options
    members = select_members(ranked, result.y, max_members) if ensemble == "auto" else ranked[:max_members]
    if len(members) >= 2:
        seconds = sum(t.fit_seconds for t in members)
        vote_acc = float(np.mean(combine("vote", [t.oof for t in members]).argmax(1) == result.y))
        stack_acc = stack_cv_accuracy(members, result.y, result.folds, seed)
        result.extra_rows += [_ensemble_row("vote", members, vote_acc, seconds),
                              _ensemble_row("stack", members, stack_acc, seconds)]
        options += [("vote", vote_acc, members), ("stack", stack_acc, members)]
    return options


def choose_option(options: list[tuple[str, float, list[Trial]]], ensemble: str = "auto") -> tuple:
    """The winner among :func:`rank_options`' options: the best cross-validated accuracy, ties to
    the simpler (the options come simplest first: single, vote, stack); ``ensemble='vote'`` or
    ``'stack'`` takes that kind whenever the search could build it."""
    if ensemble in ("vote", "stack"):
        options = [o for o in options if o[0] == ensemble] or options
    return max(options, key=lambda o: o[1])  # max keeps the first of ties: the simpler


def refit(kind: str, members: list[Trial], result: SearchResult, blocks: FeatureBlocks, base: dict, *,
          acc: float | None = None, seed: int = 0, fitted: dict | None = None):
    """The model of ``kind`` ('single', 'vote', 'stack') refitted on all training ``blocks``;
    ``fitted`` (candidate -> Classifier) reuses members refitted before."""
    from ..estimator.classifier import Classifier

    fitted = {} if fitted is None else fitted
    with torch_threads(1):
        for t in members:
            if t.candidate not in fitted:
                clf = Classifier(**base).set_params(**t.candidate.params())
                fitted[t.candidate] = clf.fit(subset_blocks(blocks, t.candidate.encoders, views=t.candidate.augment))
    models = [fitted[t.candidate] for t in members]
    if kind == "single":
        return models[0]
    meta = fit_meta([t.oof for t in members], result.y, len(result.classes), seed=seed) if kind == "stack" else None
    model = Ensemble(models, kind, meta=meta, info={"cv_accuracy": acc, "search": result.mode,
                                                    "members": [t.candidate.name for t in members]})
    model.fit_failures_ = list(blocks.failures)
    return model
