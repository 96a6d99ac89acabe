"""Does the prior probe stay >= max(zero-shot, image-only) whatever the prior's quality?

Real tasks differ most in how good their zero-shot classifier is: 36% on Fashion-MNIST, 82% on the
held-back dog/cat photos of the language issue, worse than chance on faces. This replays the
few-shot protocol on the arrays ``fewshot_prior.py --save-arrays`` wrote (the same features, draws
and test images) with synthetic zero-shot log-probabilities of chosen strength: per image, class
scores ``N(0, 1)`` plus ``margin`` on the true class (independent of the image features, so the two
experts are complementary: an optimistic case for the pool, the real prior shares the network).

    nice python benchmarks/fewshot_prior.py --task fashion-mnist --seeds 0 --save-arrays fm.npz
    nice python benchmarks/fewshot_prior_strength.py --arrays fm.npz --margins 0.5,1.5,2.5,3.5
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from wordsight._util.numerics import log_softmax
from wordsight.estimator.prior_probe import PriorProbe


def synthetic_prior(y: np.ndarray, n_classes: int, margin: float, rng) -> np.ndarray:
    scores = rng.normal(size=(len(y), n_classes))
    scores[np.arange(len(y)), y] += margin
    return log_softmax(scores)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arrays", required=True, help=".npz written by fewshot_prior.py --save-arrays")
    p.add_argument("--margins", default="0.5,1.5,2.5,3.5")
    p.add_argument("--seed", type=int, default=0, help="which seed's arrays to replay")
    args = p.parse_args(argv)
    z = np.load(args.arrays, allow_pickle=False)
    pre = f"seed{args.seed}/"
    X_pool, X_test = z[pre + "X_pool"].astype(np.float64), z[pre + "X_test"].astype(np.float64)
    y_pool, y_test = z[pre + "y_pool"], z[pre + "y_test"]
    n_classes = int(max(y_pool.max(), y_test.max()) + 1)
    ks = sorted({int(k.split("/")[1][1:]) for k in z.files if k.startswith(pre + "k")})
    draws = sorted({int(k.split("/")[2][1:]) for k in z.files if k.startswith(pre + f"k{ks[0]}/")})
    print(f"{'margin':>6} {'k':>3} {'zero-shot':>10} {'image-only':>11} {'probe':>7} {'probe - max':>12}")
    worst = np.inf
    for margin in (float(m) for m in args.margins.split(",")):
        rng = np.random.default_rng(args.seed)
        prior_test = synthetic_prior(y_test, n_classes, margin, rng)
        for k in ks:
            zs, img, probe = [], [], []
            for d in draws:
                idx = z[pre + f"k{k}/d{d}/idx"]
                prior_support = synthetic_prior(y_pool[idx], n_classes, margin, rng)
                fitted = PriorProbe().fit(X_pool[idx], y_pool[idx], prior_support, n_classes)
                zs.append(np.mean(prior_test.argmax(1) == y_test))
                img.append(float(z[pre + f"k{k}/d{d}/acc/image-only"]))
                probe.append(np.mean(fitted.logits(X_test, prior_test).argmax(1) == y_test))
            gap = 100 * (np.mean(probe) - max(np.mean(zs), np.mean(img)))
            worst = min(worst, gap)
            print(f"{margin:>6.1f} {k:>3} {np.mean(zs):>10.1%} {np.mean(img):>11.1%} {np.mean(probe):>7.1%} {gap:>+12.1f}")
    print(f"worst probe - max(zero-shot, image-only): {worst:+.1f} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
