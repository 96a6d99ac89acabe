"""Why the cross-conformal sets under-covered, measured: fold heads at the final head's C vs at C x n / n_fold.

Fashion-MNIST classes 0-4; per draw, ``--train-per-class`` images a class drawn (seeded) from the
first ``--pool`` of each class, the logistic head with its searched C fitted on them, and the
out-of-fold probabilities of fold heads fitted (a) with the same C (as before), (b) with C x n /
n_fold (:meth:`wordsight.estimator.heads.LinearHead.fold_params`), for 5 and 10 folds; the sets'
coverage on all test images of classes 0-4 (the Classifier's own conformal code), the mean over
draws, and the mean top probability of the final head and of the fold heads on the test images.
The figures in docs/benchmarks.md ("Prediction sets: the fold heads") came from this computation.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/conformal_fold_heads.py --draws 8
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _fmnist_data import fashion_samples  # noqa: E402
from wordsight._util.numerics import softmax  # noqa: E402
from wordsight.estimator import Classifier  # noqa: E402
from wordsight.estimator.conformal import class_scores, conformal_quantile  # noqa: E402
from wordsight.estimator.heads import LogisticHead  # noqa: E402
from wordsight.io.datasets import FASHION_MNIST_CLASSES  # noqa: E402

KNOWN = FASHION_MNIST_CLASSES[:5]
TARGETS = (0.8, 0.9, 0.95)


def features(split: str, per_class: int):
    base = Classifier()
    samples = [s for s in fashion_samples(split, per_class=per_class) if s.label in KNOWN]
    return base.fuse(base.extract(samples)).astype(np.float64), np.array([KNOWN.index(s.label) for s in samples])


def fold_heads(X, y, C, folds, scaled, seed):
    """Out-of-fold probabilities and the fold heads."""
    from sklearn.model_selection import StratifiedKFold

    L, heads = np.empty((len(y), len(KNOWN))), []
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y):
        heads.append(LogisticHead(C=C * len(y) / len(tr) if scaled else C).fit(X[tr], y[tr], len(KNOWN)))
        L[te] = heads[-1].logits(X[te])
    return softmax(L), heads


def one_draw(X, y, Xt, yt, seed, res) -> None:
    final = LogisticHead(random_state=seed).fit(X, y, len(KNOWN))
    Pt = softmax(final.logits(Xt))
    res.setdefault("top probability, final head", []).append(Pt.max(1).mean())
    for folds in (5, 10):
        for scaled in (False, True):
            name = f"{folds} folds, C{' x n/n_fold' if scaled else ''}"
            P, heads = fold_heads(X, y, final.info["C"], folds, scaled, seed)
            res.setdefault(f"top probability, fold heads {name}", []).append(
                np.mean([softmax(h.logits(Xt)).max(1).mean() for h in heads]))
            for method in ("lac", "aps", "raps"):
                for a in TARGETS:
                    q = conformal_quantile(class_scores(P, method)[np.arange(len(y)), y], a)
                    covered = class_scores(Pt, method)[np.arange(len(yt)), yt] <= q
                    res.setdefault(f"{name}: {method} {a:.2f}", []).append(100 * covered.mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-per-class", type=int, default=500)
    ap.add_argument("--pool", type=int, default=1000)
    ap.add_argument("--test-per-class", type=int, default=1000)
    ap.add_argument("--draws", type=int, default=8)
    args = ap.parse_args()
    Xp, yp = features("train", args.pool)
    Xt, yt = features("test", args.test_per_class)
    res: dict = {}
    for seed in range(args.draws):
        rng = np.random.default_rng(100 + seed)
        idx = np.concatenate([rng.choice(np.flatnonzero(yp == k), args.train_per_class, replace=False)
                              for k in range(len(KNOWN))])
        one_draw(Xp[idx], yp[idx], Xt, yt, seed, res)
        print(f"draw {seed} done", file=sys.stderr, flush=True)
    print(f"{args.draws} draws of {args.train_per_class} a class; {len(yt)} test images")
    for key, v in res.items():
        sd = np.std(v, ddof=1) if len(v) > 1 else float("nan")
        print(f"{key:<48} mean {np.mean(v):.4f} sd {sd:.4f}")


if __name__ == "__main__":
    main()
