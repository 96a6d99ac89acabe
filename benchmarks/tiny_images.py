"""Does upsampling 28-px images to the encoder's full 224 px help? Accuracy of a linear probe on
Fashion-MNIST embeddings computed at several input sizes, and the speed of each.

    python benchmarks/tiny_images.py --per-class 100 --sizes 224 128 96 64
"""
from __future__ import annotations

import argparse
import io
import time

import numpy as np


def samples(split: str, per_class: int, seed: int):
    from PIL import Image

    from wordsight.io.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist
    from wordsight.io.sources import Sample

    x, y = load_fashion_mnist(split)
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in range(10)])
    out = []
    for i in idx:
        buf = io.BytesIO()
        Image.fromarray(x[i], "L").save(buf, format="PNG")
        out.append(Sample(f"fmnist-{split}-{i}.png", FASHION_MNIST_CLASSES[y[i]], None, buf.getvalue()))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--sizes", type=int, nargs="+", default=[224, 128, 96, 64])
    ap.add_argument("--model", default="efficientnet-lite0")
    args = ap.parse_args()
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from wordsight.features import extract_features

    train, test = samples("train", args.per_class, 0), samples("test", args.per_class, 1)
    extract_features(train[:8], args.model, cache=False, quiet=True)  # export/load outside the timing
    print(f"{args.model}, Fashion-MNIST {len(train)} train / {len(test)} test, logistic probe (C=0.5)")
    print(f"{'input px':>8}  {'accuracy':>8}  {'img/s':>6}")
    for size in args.sizes:
        small = None if size >= 224 else size
        t = time.perf_counter()
        a = extract_features(train, args.model, cache=False, quiet=True, small_input=small)
        b = extract_features(test, args.model, cache=False, quiet=True, small_input=small)
        rate = (len(train) + len(test)) / (time.perf_counter() - t)
        sc = StandardScaler().fit(a.embeddings)
        clf = LogisticRegression(C=0.5, max_iter=2000).fit(sc.transform(a.embeddings), a.labels)
        acc = np.mean(clf.predict(sc.transform(b.embeddings)) == np.asarray(b.labels))
        print(f"{size:>8}  {acc:>8.3f}  {rate:>6.1f}", flush=True)


if __name__ == "__main__":
    main()
