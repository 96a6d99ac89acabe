"""Fashion-MNIST, all 60,000 / 10,000: a soft vote of frozen-encoder MLP models, no search.

What an ensemble of the packaged encoders reaches at full data when the members are fixed in
advance (equal weights: nothing is chosen on the test images, nor on training images), beside each
member alone. The search's own full-data run (``search_fashion_mnist.py --time-limit 3h``) costs
3-fold cross-validation of every candidate on top; this is the cheap upper-level check.

    nice python benchmarks/vote_fashion_mnist.py --out benchmarks/results/vote_fashion_mnist.json

Features come from the shared cache (embed once with ``fashion_mnist.py``); the test images are
only predicted.
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
from wordsight.estimator import Classifier  # noqa: E402
from wordsight.estimator.ensemble import Ensemble  # noqa: E402

MEMBERS = ("efficientnet-lite0", "mobilenetv2", "efficientnet-lite0,mobilenetv2")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-per-class", type=int, default=None, help="default: all 6,000")
    p.add_argument("--test-per-class", type=int, default=None, help="default: all 1,000")
    p.add_argument("--members", default=";".join(MEMBERS), help="';'-separated encoder sets, one MLP each")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    t0 = time.time()
    train = fashion_samples("train", per_class=args.train_per_class, seed=args.seed)
    test = fashion_samples("test", per_class=args.test_per_class, seed=args.seed)
    y = np.asarray([s.label for s in test], dtype=object)
    res = {"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "n_train": len(train), "n_test": len(test), "members": {}}
    members = []
    for spec in args.members.split(";"):
        t = time.perf_counter()
        clf = Classifier(encoders=tuple(spec.split(",")), head="mlp", batch_size=16, quiet=True,
                         random_state=args.seed).fit(train)
        seconds = time.perf_counter() - t
        acc = float(np.mean(clf.predict(test) == y))
        res["members"][spec] = {"test_accuracy": acc, "fit_seconds": round(seconds, 1)}
        print(f"[{time.time() - t0:6.0f}s] {spec} / mlp: {100 * acc:.2f}% ({seconds:.0f} s)", flush=True)
        members.append(clf)
    vote = Ensemble(members, "vote")
    res["vote"] = {"test_accuracy": float(np.mean(vote.predict(test) == y)), "weights": "equal"}
    print(f"[{time.time() - t0:6.0f}s] soft vote of {len(members)}: {100 * res['vote']['test_accuracy']:.2f}%")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
