"""Open-set Fashion-MNIST and conformal coverage (issue 23, must-haves 2 and 3).

Train on classes 0-4 (T-shirt/top, Trouser, Pullover, Dress, Coat), test on all 10 classes:
the unknown-class AUROC of each out-of-distribution score (msp: 1 - max probability; energy:
-logsumexp of the head's logits; knn: distance to the nearest of the training rows kept at fit;
knn-all: to the nearest of all training rows, for comparison), the
accuracy on the known classes (with and without ``reject_rate``), and the conformal sets'
empirical coverage and mean set size at 0.8 / 0.9 / 0.95 (LAC, APS, RAPS) on the known test images;
``--calibration 0.2`` calibrates on a held-out split instead of the out-of-fold scores.

``--repeats R`` fits R models on R seeded draws of the training images (the calibration scores
differ with the draw: one draw's coverage moves by about sqrt(a(1-a)/n_cal)) and prints each
draw's coverage, their mean and standard deviation, and one binomial standard deviation of the
test images' coverage; the open-set figures are the first draw's.

    PYTHONPATH=src python benchmarks/open_set_fashion_mnist.py --train-per-class 500 --test-per-class 1000 --repeats 3
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _fmnist_data import fashion_samples  # noqa: E402
from wordsight.estimator import Classifier  # noqa: E402
from wordsight.estimator.conformal import MAX_BANK, OOD_SCORES, ood_scores  # noqa: E402
from wordsight.io.datasets import FASHION_MNIST_CLASSES  # noqa: E402

KNOWN = FASHION_MNIST_CLASSES[:5]
TARGETS = (0.8, 0.9, 0.95)
METHODS = ("lac", "aps", "raps")


def open_set(clf, Xtr, Xte, yte, reject_rate) -> None:
    """The unknown-class AUROC of each score and the accuracy with and without ``reject_rate``."""
    from sklearn.metrics import roc_auc_score
    from sklearn.neighbors import NearestNeighbors

    known = np.isin(yte, KNOWN)
    z, cal = clf.state_.head.logits(Xte.astype(np.float64)), clf.state_.calibration
    every = NearestNeighbors(n_neighbors=1).fit(Xtr).kneighbors(Xte)[0][:, 0]
    for name, s in [(score, ood_scores(cal, z, Xte, score)) for score in OOD_SCORES] + [("knn-all", every)]:
        print(f"unknown-class AUROC {name:<10} {100 * roc_auc_score(~known, s):6.2f}")
    pred = clf.predict(Xte[known])
    rej = clf.predict(Xte, reject_rate=reject_rate)
    print(f"known-class accuracy {100 * np.mean(pred == yte[known]):.2f}; with reject rate {reject_rate}: "
          f"{100 * np.mean(rej[known] == 'unknown'):.1f}% of known and {100 * np.mean(rej[~known] == 'unknown'):.1f}%"
          " of unknown test images marked unknown")


def coverage(clf, X, labels) -> dict:
    """{(method, target): (coverage %, mean set size)} on the known test images."""
    y = np.searchsorted(clf.classes_, labels)
    out = {}
    for method in METHODS:
        for cov in TARGETS:
            S = clf.predict_set_matrix(X, cov, method)
            out[method, cov] = (100 * S[np.arange(len(y)), y].mean(), S.sum(1).mean())
    return out


def summary(draws: list[dict], n_test: int) -> None:
    print(f"\ncoverage % over {len(draws)} draw(s) of the training images; {n_test} known test images")
    for method in METHODS:
        for cov in TARGETS:
            c = np.array([d[method, cov][0] for d in draws])
            size = np.mean([d[method, cov][1] for d in draws])
            sd = np.std(c, ddof=1) if len(c) > 1 else float("nan")
            print(f"{method:<5} target {cov:.2f}: coverage {c.mean():.2f} (sd over draws {sd:.2f}; "
                  f"binomial sd of the test images {100 * np.sqrt(cov * (1 - cov) / n_test):.2f}), mean set size "
                  f"{size:.2f}; draws: {' '.join(f'{v:.2f}' for v in c)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-per-class", type=int, default=200)
    ap.add_argument("--test-per-class", type=int, default=100)
    ap.add_argument("--reject-rate", type=float, default=0.05)
    ap.add_argument("--repeats", type=int, default=1, help="draws of the training images (seeds 0..R-1)")
    ap.add_argument("--calibration", type=float, default=None,
                    help="a held-out calibration fraction (split conformal) instead of the out-of-fold scores")
    args = ap.parse_args()
    base = Classifier()
    test = fashion_samples("test", per_class=args.test_per_class)
    Xte, yte = base.fuse(base.extract(test)), np.array([s.label for s in test])
    known = np.isin(yte, KNOWN)
    draws = []
    for seed in range(args.repeats):
        train = [s for s in fashion_samples("train", per_class=args.train_per_class, seed=seed) if s.label in KNOWN]
        Xtr, ytr = base.fuse(base.extract(train)), np.array([s.label for s in train])
        t = time.perf_counter()
        clf = Classifier(calibration=args.calibration or "cross", random_state=seed).fit(Xtr, ytr)
        folds = clf.state_.calibration.folds
        print(f"draw {seed}: fit (calibration {args.calibration or f'{folds}-fold out-of-fold'}) on {len(ytr)} images: "
              f"{time.perf_counter() - t:.1f} s, C {clf.state_.head.info.get('C')}; "
              f"{min(len(ytr), MAX_BANK)} training rows kept for knn", flush=True)
        if seed == 0:
            open_set(clf, Xtr, Xte, yte, args.reject_rate)
        draws.append(coverage(clf, Xte[known], yte[known]))
        print(" ".join(f"{m} {c:.2f}: {v[0]:.2f} ({v[1]:.2f})" for (m, c), v in draws[-1].items()), flush=True)
    summary(draws, int(known.sum()))


if __name__ == "__main__":
    main()
