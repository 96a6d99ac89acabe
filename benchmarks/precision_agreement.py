"""A model fitted on fp32 features predicting from bf16 features, and the reverse (issue 27).

    python benchmarks/precision_agreement.py --train-per-class 50 --test-per-class 100

Fits a logistic head (image fusion) on Fashion-MNIST training images at each precision, predicts
the test images from fp32 and from bf16 features, and prints the share of test images whose
predicted class is the same and the largest difference in a probability. bf16 needs a CPU with
AVX512_BF16 or AMX (elsewhere OpenVINO computes it in fp32 and the agreement is 100%).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train-per-class", type=int, default=50)
    ap.add_argument("--test-per-class", type=int, default=100)
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "wordsight-agreement"))
    args = ap.parse_args()
    os.environ.pop("WORDSIGHT_PRECISION", None)
    from wordsight import Classifier
    from wordsight.estimator.heads import LogisticHead
    from wordsight.features.engines.cpu import cpu_model, has_bf16
    from wordsight.io.datasets import find_fashion_mnist, write_image_folder

    root = find_fashion_mnist(download=False)
    work = Path(args.workdir) / f"{args.train_per_class}-{args.test_per_class}"
    train = write_image_folder(work, "train", per_class=args.train_per_class, root=root)
    test = write_image_folder(work, "test", per_class=args.test_per_class, root=root)
    print(f"CPU: {cpu_model()}, bf16: {has_bf16()}; load average {os.getloadavg()[0]:.1f}")
    for fit_at in ("fp32", "bf16"):
        t = time.perf_counter()
        clf = Classifier(head=LogisticHead(C=1.0), fusion="image", precision=fit_at, quiet=True).fit(train)
        p = {at: clf.set_params(precision=at).predict_proba(test) for at in ("fp32", "bf16")}
        same = (p["fp32"].argmax(1) == p["bf16"].argmax(1)).mean()
        print(f"fitted on {fit_at} features: predicted class the same from fp32 and bf16 features on {same:.1%} "
              f"of {len(p['fp32'])} test images; max |difference in a probability| "
              f"{np.abs(p['fp32'] - p['bf16']).max():.3f} ({time.perf_counter() - t:.0f} s)")


if __name__ == "__main__":
    main()
