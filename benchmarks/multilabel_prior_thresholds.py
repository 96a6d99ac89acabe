"""Where a few-shot tagger's thresholds come from (the multi-label language prior, issue 24 follow-up):
the per-label F1 thresholds chosen on out-of-fold probabilities of the label probe (what
``predict_proba`` computes, today) against those of the image head alone (before), scored on the
same test mosaics by micro- and macro-F1 at each set of thresholds.

    OMP_NUM_THREADS=1 nice python benchmarks/multilabel_prior_thresholds.py --train 16,32,64 --draws 3

Training mosaics from Fashion-MNIST's training images (seeds 0..draws-1), 300 test mosaics from its
test images (seed 100); EfficientNet-Lite0, ``fusion="prior"`` (the default below 16 positives per
label).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from multilabel_mosaics import source  # noqa: E402
from wordsight.estimator import Classifier  # noqa: E402
from wordsight.estimator.tasks.label_folds import fold_splits, out_of_fold_proba  # noqa: E402
from wordsight.estimator.tasks.label_scores import thresholds_by_f1  # noqa: E402
from wordsight.estimator.tasks.multi_label import MIN_POSITIVES, THRESHOLD_FOLDS  # noqa: E402


def f1s(Y: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    tp, fp, fn = (pred & Y).sum(0), (pred & ~Y).sum(0), (~pred & Y).sum(0)
    micro = 2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1)
    macro = np.mean(2 * tp / np.maximum(2 * tp + fp + fn, 1))
    return float(micro), float(macro)


def one(n: int, seed: int, test) -> dict:
    train = source("train", n, seed, False)
    model = Classifier(task="multi-label", fusion="prior", encoders=("efficientnet-lite0",), quiet=True).fit(train)
    classes = [str(c) for c in model.classes_]

    def targets(src):
        return np.array([[c in set(map(str, lab)) for c in classes] for lab in src.labels])

    Y, Yt = targets(train), targets(test)
    M = model.featurize(train).matrix
    head_oof = out_of_fold_proba(model.head_, M, Y.astype(np.int64), fold_splits(len(Y), THRESHOLD_FOLDS))
    before = thresholds_by_f1(Y.astype(np.int64), head_oof, MIN_POSITIVES)[0]
    P = model.predict_proba(test)
    return {"probe": f1s(Yt, P >= model.task_.thresholds_), "head": f1s(Yt, P >= before),
            "half": f1s(Yt, P >= 0.5)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", default="16,32,64")
    p.add_argument("--draws", type=int, default=3)
    p.add_argument("--test", type=int, default=300)
    args = p.parse_args(argv)
    test = source("test", args.test, 100, False)
    print("| training mosaics | thresholds from | micro-F1 | macro-F1 |\n|---|---|---|---|")
    for n in (int(v) for v in args.train.split(",")):
        runs = [one(n, seed, test) for seed in range(args.draws)]
        for key, what in (("probe", "the label probe's out-of-fold probabilities (now)"),
                          ("head", "the image head's out-of-fold probabilities (before)"), ("half", "0.5 everywhere")):
            mi, ma = np.mean([r[key] for r in runs], 0)
            print(f"| {n} | {what} | {mi:.3f} | {ma:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
