"""One-class Fashion-MNIST, the standard protocol: for each class, fit a detector on that class's
training images only, score every test image with that class as normal and the nine others as
abnormal; report AUROC per class and method, the mean over the classes (the anchor: DN2 with a
ResNet-152, 94.5; PANDA 95.6), and the fit + scoring time and peak memory per class.

    python benchmarks/one_class_fashion_mnist.py                                    # full: 6,000 / 10,000
    python benchmarks/one_class_fashion_mnist.py --train-per-class 300 --test-per-class 100   # a subsample

Features are extracted once (shared cache) and every detector reads them; time and memory per
class are those of fitting and scoring on the features (extraction is reported separately).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _fmnist_data import fashion_samples  # noqa: E402
from wordsight.estimator.anomaly import AnomalyDetector  # noqa: E402
from wordsight.estimator.tasks.one_class import auroc  # noqa: E402
from wordsight.io.datasets import FASHION_MNIST_CLASSES  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train-per-class", type=int, default=None, help="training images of the normal class (default all 6,000)")
    p.add_argument("--test-per-class", type=int, default=None, help="test images per class (default all: 10,000 in total)")
    p.add_argument("--methods", default="knn,mahalanobis", help="comma-separated: knn, mahalanobis")
    p.add_argument("--encoders", default="efficientnet-lite0", help="comma-separated image encoders")
    p.add_argument("--k", type=int, default=2, help="neighbours of knn (DN2: 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="write the figures as JSON")
    return p.parse_args(argv)


def one_class(det: AnomalyDetector, train, test, normal: str) -> dict:
    """Fit on the normal class's training rows, score the test rows: AUROC, seconds, peak MiB."""
    tracemalloc.start()
    t0 = time.perf_counter()
    det.fit(train.take([i for i, v in enumerate(train.labels) if v == normal]))
    score = -det.score_samples(test)  # higher = more abnormal
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    y = (np.asarray(test.labels, dtype=object) != normal).astype(int)
    return {"auroc": 100 * auroc(y, score), "seconds": seconds, "peak_mib": peak}


def main(argv=None) -> None:
    args = parse_args(argv)
    encoders = [e.strip() for e in args.encoders.split(",") if e.strip()]
    t0 = time.perf_counter()
    reader = AnomalyDetector(encoders=encoders, quiet=False)
    train = reader.extract(fashion_samples("train", per_class=args.train_per_class, seed=args.seed))
    test = reader.extract(fashion_samples("test", per_class=args.test_per_class, seed=args.seed))
    print(f"features of {len(train)} training and {len(test)} test images ({', '.join(encoders)}): "
          f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    results = {}
    for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
        rows = {c: one_class(AnomalyDetector(encoders=encoders, method=method, k=args.k), train, test, c)
                for c in FASHION_MNIST_CLASSES}
        results[method] = {"per_class": rows, "mean_auroc": float(np.mean([r["auroc"] for r in rows.values()]))}
    print(f"{'class':<14}" + "".join(f"{m:>22}" for m in results))
    for c in FASHION_MNIST_CLASSES:
        print(f"{c:<14}" + "".join(f"{r['per_class'][c]['auroc']:>7.2f} {r['per_class'][c]['seconds']:>6.2f}s "
                                   f"{r['per_class'][c]['peak_mib']:>5.0f}M" for r in results.values()))
    print(f"{'mean AUROC':<14}" + "".join(f"{r['mean_auroc']:>22.2f}" for r in results.values()))
    print(f"protocol: train {args.train_per_class or 'all'} per class, test {args.test_per_class or 'all'} per class; "
          "anchors: DN2 (ResNet-152) 94.5, PANDA 95.6")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "results": results}, indent=2))


if __name__ == "__main__":
    main()
