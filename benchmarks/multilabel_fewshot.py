"""Multi-label few-shot with the language prior (issue 24): image-only one-vs-rest logistic against
the per-label prior probe (zero-shot tag log-odds as the offset, the image probe as the residual,
:mod:`wordsight.estimator.label_prior_probe`), on a few seeded Fashion-MNIST training mosaics.

Draws of ``n`` training mosaics (each label present at least once) from a pool of 2,000; the same
test mosaics for every row; mAP (macro average precision) and micro/macro-F1 at each model's
thresholds, mean over the draws.

    PYTHONPATH=src python benchmarks/multilabel_fewshot.py --sizes 16,32,64 --draws 3 --test 500
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from multilabel_mosaics import scores, source  # noqa: E402
from wordsight.estimator import Classifier  # noqa: E402
from wordsight.io.sources import Source  # noqa: E402


def draw(pool: Source, n: int, rng) -> Source:
    labels = {c for s in pool.samples for c in s.label}
    while True:
        idx = np.sort(rng.choice(len(pool.samples), n, replace=False))
        if {c for i in idx for c in pool.samples[i].label} == labels:
            return Source([pool.samples[i] for i in idx], [])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="16,32,64")
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--test", type=int, default=500)
    ap.add_argument("--encoders", default="efficientnet-lite0")
    args = ap.parse_args()
    pool = source("train", 2000, 0, False)
    test = source("test", args.test, 1, False)
    encoders = tuple(args.encoders.split(","))
    rows = []
    for n in (int(v) for v in args.sizes.split(",")):
        res = {"image": [], "prior": []}
        for d in range(args.draws):
            train = draw(pool, n, np.random.default_rng(1000 * n + d))
            for fusion in res:
                t = time.time()
                clf = Classifier(task="multi-label", fusion=fusion, encoders=encoders).fit(train)
                P = clf.predict_proba(test)
                m = scores(clf.task_, clf.task_.targets(test.labels, clf.classes_), P, clf.classes_)
                probe = clf.state_.probe
                res[fusion].append({**m, "choice": probe.info["choice"] if probe is not None else None,
                                    "seconds": round(time.time() - t, 1)})
                print(json.dumps({"n": n, "draw": d, "fusion": fusion, **res[fusion][-1]}), flush=True)
        positives = n * np.mean([len(s.label) for s in pool.samples]) / 10
        for fusion, rs in res.items():
            rows.append({"n": n, "positives_per_label": round(positives, 1), "fusion": fusion,
                         **{k: round(float(np.mean([r[k] for r in rs])), 4) for k in ("mAP", "micro_f1", "macro_f1")},
                         "choices": [r["choice"] for r in rs]})
    print(f"\n| training mosaics (about positives per label) | fusion | mAP | micro-F1 | macro-F1 |  "
          f"({args.draws} draws, {args.test} test mosaics, {args.encoders})")
    for r in rows:
        print(f"| {r['n']} ({r['positives_per_label']}) | {r['fusion']} | {r['mAP']:.4f} | {r['micro_f1']:.4f} | "
              f"{r['macro_f1']:.4f} |")


if __name__ == "__main__":
    main()
