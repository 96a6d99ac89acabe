"""Why one image per class is where issue 26's floor cannot be held by choosing the prior's weight:
scores, on the arrays of ``benchmarks/fewshot_dump.py``, the few-shot learner at one image per class
(the image probe plus ``m * T`` times the prior's log-probabilities, ``T`` its calibration on the
labelled images) for a grid of ``m``, per task and seed, against the issue's references.

    OMP_NUM_THREADS=1 nice python benchmarks/fewshot_dump.py --seeds 0,1,2 --out /tmp/dump
    OMP_NUM_THREADS=1 nice python benchmarks/fewshot_dump.py --tasks fm-3,fm-5,fm-shoes --seeds 0,1 --out /tmp/dump
    python benchmarks/fewshot_k1_limits.py --dump /tmp/dump

Three tables, each row a task and seed (5 draws of ``fewshot_curves``), each column a weight ``m``,
each cell the learner's accuracy minus the reference in points (the reference: max(zero-shot
centred on the scored images' own mean as ``wordsight zeroshot`` does, image probe); Fashion-MNIST:
the image probe, whose floor is +2.9):

- ``test``: scored on the test images, the prior centred as the learner centres it (the other
  classes' share of the labelled images' mean);
- ``pool``: scored on the pool images outside each draw (training images only), seed 0: where a
  constant may be chosen without looking at test images;
- ``test, prior centred on the whole pool``: the prior centred on every pool image (hundreds of
  unlabelled images, as a user with an unlabelled folder could give): how much of the gap is the
  centre estimated from a few labelled images.

A row with no cell within a point (>= +2.9 for Fashion-MNIST) is a task no weight passes; columns
that pass every row are printed at the end of each table.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from fewshot_dump import prior_log_proba, unit  # noqa: E402
from wordsight.estimator.prior_probe import PriorProbe, calibrate  # noqa: E402
from wordsight.evaluate.fewshot import draw_k_shot  # noqa: E402

WEIGHTS = (0.0, 0.1, 0.2, 0.25, 0.3, 1 / 3, 0.4, 0.5, 0.75, 1.0, 2.0)
FLOOR_FASHION = 2.9  # the gain over the image probe on Fashion-MNIST


def load(path: Path) -> dict:
    z = np.load(path)
    d = {k: z[k] for k in z.files}
    d["ways"] = [str(w) for w in d["ways"]]
    return d


def centre(d: dict, rows: str, idx, share: float) -> dict:
    return {w: share * unit(d[f"V{rows}_{w}"][idx]).mean(0) for w in d["ways"]}


def score(d: dict, seed: int, where: str) -> dict[float, float]:
    """Points above the reference per weight ``m`` (mean of 5 draws at one image per class)."""
    n_classes = len(d["classes"])
    labels = np.asarray(d["classes"])[d["yp"]].astype(object)
    acc, image_acc, zero_acc = {m: [] for m in WEIGHTS}, [], []
    for i in range(5):
        idx = draw_k_shot(labels, 1, seed + 1000 * i + 1)
        ys = d["yp"][idx]
        if where == "pool":
            rows = np.setdiff1d(np.arange(len(d["yp"])), idx)
            X, y = d["Xp"][rows], d["yp"][rows]
        else:
            rows, X, y = None, d["Xt"], d["yt"]
        own = centre(d, "p", rows, 1.0) if where == "pool" else centre(d, "t", slice(None), 1.0)
        zero = prior_log_proba(d, "p", own)[rows] if where == "pool" else prior_log_proba(d, "t", own)
        c = centre(d, "p", slice(None), 1.0) if where == "whole pool" else centre(
            d, "p", idx, (n_classes - 1) / n_classes)
        prior_all = prior_log_proba(d, "p", c)
        prior = prior_all[rows] if where == "pool" else prior_log_proba(d, "t", c)
        T = calibrate(prior_all[idx], ys)
        probe = PriorProbe().fit(d["Xp"][idx], ys, np.zeros((len(idx), n_classes)), n_classes)
        image = probe.image_part(X, np.zeros((len(X), n_classes)))[0]
        image_acc.append(np.mean(image.argmax(1) == y))
        zero_acc.append(np.mean(zero.argmax(1) == y))
        for m in WEIGHTS:
            acc[m].append(np.mean((m * T * prior + image).argmax(1) == y))
    fashion = n_classes == 10
    ref = np.mean(image_acc) + (FLOOR_FASHION / 100 if fashion else 0.0)
    if not fashion:
        ref = max(ref, np.mean(zero_acc))
    return {m: 100 * (np.mean(v) - ref) + (0.0 if fashion else 1.0) for m, v in acc.items()}


def table(dump: Path, where: str, seeds) -> str:
    lines = [f"### {where}", "margin over the floor in points (>= 0 passes)", "",
             "| task, seed | " + " | ".join(f"m={m:.2g}" for m in WEIGHTS) + " |",
             "|---|" + "---|" * len(WEIGHTS)]
    passing = set(WEIGHTS)
    for path in sorted(dump.glob("*_seed*.npz")):
        task, seed = path.stem.rsplit("_seed", 1)
        if int(seed) not in seeds:
            continue
        gaps = score(load(path), int(seed), where)
        passing &= {m for m, g in gaps.items() if g >= 0}
        lines.append(f"| {task}, {seed} | " + " | ".join(
            f"**{g:+.1f}**" if g < 0 else f"{g:+.1f}" for g in gaps.values()) + " |")
    lines.append("")
    lines.append("weights that pass every row: " + (", ".join(f"{m:.2g}" for m in sorted(passing)) or "none"))
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dump", default="/tmp/wordsight-fewshot-dump")
    args = p.parse_args(argv)
    dump = Path(args.dump)
    print(table(dump, "test", {0, 1, 2}), "\n")
    print(table(dump, "pool", {0}), "\n")
    print(table(dump, "whole pool", {0, 1, 2}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
