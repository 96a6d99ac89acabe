"""PatchCore vs DN2 (knn) on one-class Fashion-MNIST, a short run on a few classes: for each class,
fit on that class's training images, score the test images (that class normal, the others
abnormal), AUROC; fit + scoring seconds and peak memory (tracemalloc: numpy and Python; faiss's
own buffers are not traced, so the bank's size is printed too).

    python benchmarks/patchcore_fashion_mnist.py --classes T-shirt/top,Trouser,Bag --train-per-class 300 --test-per-class 100

Patch grids are read once (:mod:`wordsight.estimator.anomaly.patches`, torch) for the test images
and once per class for the training images; reading time is reported separately.
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


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--classes", default="T-shirt/top,Trouser,Bag")
    p.add_argument("--train-per-class", type=int, default=300)
    p.add_argument("--test-per-class", type=int, default=100)
    p.add_argument("--coreset", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="write the figures as JSON")
    return p.parse_args(argv)


def timed(fn):
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return out, seconds, peak


def main(argv=None) -> None:
    args = parse_args(argv)
    classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    train_all = fashion_samples("train", per_class=args.train_per_class, seed=args.seed)
    test = fashion_samples("test", per_class=args.test_per_class, seed=args.seed)
    pc_reader = AnomalyDetector(method="patchcore", coreset=args.coreset)
    knn_reader = AnomalyDetector()
    t0 = time.perf_counter()
    test_patches, _ = pc_reader.featurize_patches(test)
    read_s = time.perf_counter() - t0
    test_pooled = knn_reader.featurize(test).matrix
    y_labels = np.asarray([s.label for s in test], dtype=object)
    print(f"patch grids of {len(test)} test images: {read_s:.1f} s ({len(test) / read_s:.1f} img/s)", file=sys.stderr)
    results = {}
    for c in classes:
        train = [s for s in train_all if s.label == c]
        y = (y_labels != c).astype(int)
        t0 = time.perf_counter()
        train_patches, _ = pc_reader.featurize_patches(train)
        train_read = time.perf_counter() - t0
        pc = AnomalyDetector(method="patchcore", coreset=args.coreset)
        score, s_pc, m_pc = timed(lambda: (pc.fit(train_patches.matrix), -pc.score_samples(test_patches.matrix))[1])
        knn = AnomalyDetector()
        kscore, s_knn, m_knn = timed(lambda: (knn.fit(knn_reader.featurize(train).matrix),
                                              -knn.score_samples(test_pooled))[1])
        results[c] = {"patchcore": {"auroc": 100 * auroc(y, score), "seconds": s_pc, "peak_mib": m_pc,
                                    "bank": list(pc.scorer_.bank.shape), "train_read_s": train_read},
                      "knn": {"auroc": 100 * auroc(y, kscore), "seconds": s_knn, "peak_mib": m_knn}}
        print(c, json.dumps(results[c]), file=sys.stderr)
    print(f"{'class':<14}{'patchcore AUROC':>16}{'s':>8}{'MiB':>7}{'bank':>12}{'knn AUROC':>11}{'s':>7}{'MiB':>7}")
    for c, r in results.items():
        p, k = r["patchcore"], r["knn"]
        print(f"{c:<14}{p['auroc']:>16.2f}{p['seconds']:>8.1f}{p['peak_mib']:>7.0f}{'x'.join(map(str, p['bank'])):>12}"
              f"{k['auroc']:>11.2f}{k['seconds']:>7.2f}{k['peak_mib']:>7.0f}")
    for m in ("patchcore", "knn"):
        print(f"mean AUROC {m}: {np.mean([r[m]['auroc'] for r in results.values()]):.2f}")
    print(f"protocol: train {args.train_per_class} per class, test {args.test_per_class} per class "
          f"({len(test)} images), coreset {args.coreset}")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "results": results}, indent=2))


if __name__ == "__main__":
    main()
