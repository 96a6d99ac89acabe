"""The prior's weight at one image per class, where nothing can be chosen on held-out images
(issue 26): the default learner's accuracy with the prior at fixed multiples of its calibration T,
on the draws of ``benchmarks/fewshot_curves.py`` (same tasks, same seeds, same k-shot draws).

    OMP_NUM_THREADS=1 nice python benchmarks/fewshot_prior_weights.py --tasks fm-easy,fashion-mnist --seeds 0,1 --k 1

Per draw the prior learner is fitted once (``Classifier(fusion="prior")``); its image probe
(fitted without the prior, ``PriorProbe``) and the prior's calibration T are then combined as
``mult * T * log_softmax(prior) + W x + b`` for each ``mult`` of ``--mults`` on the test images.
Prints the mean accuracy per multiple beside image-only, and the gain over image-only.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from fewshot_curves import BASE, TASKS, say  # noqa: E402
from wordsight._util.numerics import log_softmax  # noqa: E402
from wordsight.estimator import Classifier  # noqa: E402
from wordsight.evaluate.fewshot import draw_k_shot  # noqa: E402


def draw_accuracies(model, test, y_test, mults) -> dict[float, float]:
    probe = model.fusion_.probe_
    X = model.fuse(test)
    prior = log_softmax(np.asarray(model.fusion_.prior_logits(model, test), np.float64))
    W, b, _ = probe.linear()
    image = np.asarray(X, np.float64) @ W.T + b
    T = probe.info["calibration"]
    return {m: float(np.mean(model.classes_[(m * T * prior + image).argmax(1)] == y_test)) for m in mults}


def run(task: str, seed: int, k: int, draws: int, mults) -> tuple[dict, float]:
    pool_s, test_s = TASKS[task](seed)
    ext = Classifier(**BASE)
    pool, test = ext.extract(pool_s), ext.extract(test_s)
    y_test = np.asarray(test.labels, dtype=object)
    accs, image_acc = {m: [] for m in mults}, []
    for d in range(draws):
        idx = draw_k_shot(pool.labels, k, seed + 1000 * d + k)  # as fewshot_curves draws
        model = Classifier(fusion="prior", **BASE).fit(pool.take(idx))
        for m, a in draw_accuracies(model, test, y_test, mults).items():
            accs[m].append(a)
        image_acc.append(float(np.mean(Classifier(**BASE).fit(pool.take(idx)).predict(test) == y_test)))
        say(f"{task} seed {seed} k={k} draw {d}: image-only {image_acc[-1]:.3f}")
    return {m: float(np.mean(v)) for m, v in accs.items()}, float(np.mean(image_acc))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="fm-easy,fashion-mnist")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--k", type=int, default=1)
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--mults", default="0,0.15,0.2,0.25,0.3,0.5")
    args = p.parse_args(argv)
    mults = [float(m) for m in args.mults.split(",")]
    print(f"| task, seed (k={args.k}) | image-only | " + " | ".join(f"{m:g} T" for m in mults) + " |")
    print("|---" * (len(mults) + 2) + "|")
    for task in args.tasks.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            accs, image = run(task, seed, args.k, args.draws, mults)
            print(f"| {task}, {seed} | {100 * image:.1f} | "
                  + " | ".join(f"{100 * accs[m]:.1f} ({100 * (accs[m] - image):+.1f})" for m in mults) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
