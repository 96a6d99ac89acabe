"""Open-set Fashion-MNIST and conformal coverage (issue 23, must-haves 2 and 3).

Train on classes 0-4 (T-shirt/top, Trouser, Pullover, Dress, Coat), test on all 10 classes:
the unknown-class AUROC of each out-of-distribution score (msp: 1 - max probability; energy:
-logsumexp of the head's logits; knn: distance to the nearest of the training rows kept at fit;
knn-all: to the nearest of all training rows, for comparison), the
accuracy on the known classes (with and without ``reject_rate``), and the conformal sets'
empirical coverage and mean set size at 0.8 / 0.9 / 0.95 (LAC, APS, RAPS) on the known test images;
``--calibration 0.2`` calibrates on a held-out split instead of the out-of-fold scores.

    PYTHONPATH=src python benchmarks/open_set_fashion_mnist.py --train-per-class 200 --test-per-class 100
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-per-class", type=int, default=200)
    ap.add_argument("--test-per-class", type=int, default=100)
    ap.add_argument("--reject-rate", type=float, default=0.05)
    ap.add_argument("--calibration", type=float, default=None,
                    help="a held-out calibration fraction (split conformal) instead of the out-of-fold scores")
    args = ap.parse_args()
    from sklearn.metrics import roc_auc_score
    from sklearn.neighbors import NearestNeighbors

    base = Classifier()
    train = [s for s in fashion_samples("train", per_class=args.train_per_class) if s.label in KNOWN]
    test = fashion_samples("test", per_class=args.test_per_class)
    Xtr, Xte = base.fuse(base.extract(train)), base.fuse(base.extract(test))
    ytr, yte = np.array([s.label for s in train]), np.array([s.label for s in test])
    t = time.perf_counter()
    clf = Classifier(calibration=args.calibration or "cross").fit(Xtr, ytr)
    print(f"fit (calibration {args.calibration or '5-fold out-of-fold'}) on {len(ytr)} images: {time.perf_counter() - t:.1f} s; "
          f"{min(len(ytr), MAX_BANK)} training rows kept for knn")
    known = np.isin(yte, KNOWN)
    z, cal = clf.state_.head.logits(Xte.astype(np.float64)), clf.state_.calibration
    every = NearestNeighbors(n_neighbors=1).fit(Xtr).kneighbors(Xte)[0][:, 0]
    for name, s in [(score, ood_scores(cal, z, Xte, score)) for score in OOD_SCORES] + [("knn-all", every)]:
        print(f"unknown-class AUROC {name:<10} {100 * roc_auc_score(~known, s):6.2f}")
    pred = clf.predict(Xte[known])
    rej = clf.predict(Xte, reject_rate=args.reject_rate)
    print(f"known-class accuracy {100 * np.mean(pred == yte[known]):.2f}; with reject rate {args.reject_rate}: "
          f"{100 * np.mean(rej[known] == 'unknown'):.1f}% of known and {100 * np.mean(rej[~known] == 'unknown'):.1f}%"
          " of unknown test images marked unknown")
    y = np.searchsorted(clf.classes_, yte[known])
    for method in ("lac", "aps", "raps"):
        for cov in (0.8, 0.9, 0.95):
            S = clf.predict_set_matrix(Xte[known], cov, method)
            print(f"{method} target {cov:.2f}: coverage {100 * S[np.arange(len(y)), y].mean():.2f}, "
                  f"mean set size {S.sum(1).mean():.2f}")


if __name__ == "__main__":
    main()
