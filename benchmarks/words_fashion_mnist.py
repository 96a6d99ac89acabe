"""The words side of anomaly detection on one-class Fashion-MNIST (a short run): per class, the
AUROC of DN2 (knn on pooled features), of the words alone ("a photo of a flawless X" vs "a photo
of a damaged X", no normal image used) and of their fused score at several words weights, on the
same subsample; optionally PyOD's detectors on the same features.

    python benchmarks/words_fashion_mnist.py --train-per-class 200 --test-per-class 100 --pyod

The zero-shot reading of each image is extracted once (the inverted view the pipeline picks for
light-on-dark images) and scored against every class's texts.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _fmnist_data import fashion_samples  # noqa: E402
from wordsight.estimator.anomaly import AnomalyDetector  # noqa: E402
from wordsight.estimator.anomaly.words import WordScorer, _robust  # noqa: E402
from wordsight.estimator.tasks.one_class import auroc  # noqa: E402
from wordsight.io.datasets import FASHION_MNIST_CLASSES  # noqa: E402

NAMES = {"T-shirt/top": "t-shirt", "Trouser": "trousers", "Pullover": "pullover", "Dress": "dress",
         "Coat": "coat", "Sandal": "sandal", "Shirt": "shirt", "Sneaker": "sneaker", "Bag": "bag",
         "Ankle boot": "ankle boot"}
WEIGHTS = (0.1, 0.25, 0.5)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train-per-class", type=int, default=200)
    p.add_argument("--test-per-class", type=int, default=100)
    p.add_argument("--pyod", action="store_true", help="add PyOD's KNN, ECOD and IForest on the same features")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    return p.parse_args(argv)


def pyod_scores(Ztr, Zte) -> dict:
    from pyod.models.ecod import ECOD
    from pyod.models.iforest import IForest
    from pyod.models.knn import KNN

    out = {}
    for name, model in (("pyod-knn", KNN(n_neighbors=2, metric="cosine")), ("pyod-ecod", ECOD()),
                        ("pyod-iforest", IForest(random_state=0))):
        out[name] = model.fit(Ztr).decision_function(Zte)  # higher = more abnormal
    return out


def main(argv=None) -> None:
    args = parse_args(argv)
    train_all = fashion_samples("train", per_class=args.train_per_class, seed=args.seed)
    test = fashion_samples("test", per_class=args.test_per_class, seed=args.seed)
    knn = AnomalyDetector()
    t0 = time.perf_counter()
    Ztr, Zte = knn.featurize(train_all).matrix, knn.featurize(test).matrix
    reader = WordScorer("x").fit(view="invert")
    read_tr = reader.pipeline_.reading(reader.pipeline_.read(train_all))
    read_te = reader.pipeline_.reading(reader.pipeline_.read(test))
    print(f"features: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    ytr = np.asarray([s.label for s in train_all], dtype=object)
    yte = np.asarray([s.label for s in test], dtype=object)
    results = {}
    for c in FASHION_MNIST_CLASSES:
        y = (yte != c).astype(int)
        det = AnomalyDetector().fit(Ztr[ytr == c])
        held, img = -det.scorer_.held_out_distance(), det.score_samples(Zte)
        ws = WordScorer(NAMES[c]).fit(view="invert")

        def odds(reading, ws=ws):
            L = ws.pipeline_.log_proba_reading(reading)
            return L[:, 0] - L[:, 1]

        wtr = odds({k: v[ytr == c] for k, v in read_tr.items()})
        wte = odds(read_te)
        (mi, si), (mw, sw) = _robust(held), _robust(wtr)
        row = {"knn": 100 * auroc(y, -img), "words": 100 * auroc(y, -wte)}
        for lam in WEIGHTS:
            row[f"fused {lam:g}"] = 100 * auroc(y, -((1 - lam) * (img - mi) / si + lam * (wte - mw) / sw))
        if args.pyod:
            for name, s in pyod_scores(Ztr[ytr == c], Zte).items():
                row[name] = 100 * auroc(y, s)
        results[c] = row
        print(c, json.dumps(row), file=sys.stderr)
    cols = list(next(iter(results.values())))
    print(f"{'class':<14}" + "".join(f"{m:>13}" for m in cols))
    for c, r in results.items():
        print(f"{c:<14}" + "".join(f"{r[m]:>13.2f}" for m in cols))
    print(f"{'mean':<14}" + "".join(f"{np.mean([r[m] for r in results.values()]):>13.2f}" for m in cols))
    print(f"protocol: train {args.train_per_class} per class, test {args.test_per_class} per class ({len(test)} images)")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "results": results}, indent=2))


if __name__ == "__main__":
    main()
