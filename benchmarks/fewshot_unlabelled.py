"""What a folder of unlabelled images would add to the few-shot learner, and where it breaks
(issue 26, fourth pass). Scores, on the arrays of ``benchmarks/fewshot_dump.py``, today's default
learner (``PriorProbe``: the image probe plus the prior, fitted on the labelled images only) and a
semi-supervised learner that also sees the task's other pool images without their labels.

    OMP_NUM_THREADS=1 nice python benchmarks/fewshot_dump.py --seeds 0,1,2 --out /tmp/dump
    OMP_NUM_THREADS=1 nice python benchmarks/fewshot_dump.py --tasks fm-3,fm-5,fm-shoes --seeds 0,1 --out /tmp/dump
    OMP_NUM_THREADS=1 nice python benchmarks/fewshot_unlabelled.py --dump /tmp/dump
    OMP_NUM_THREADS=1 nice python benchmarks/fewshot_unlabelled.py --dump /tmp/dump --agree

The semi-supervised learner measures the information; it is not a wordsight learner:

1. seeded k-means (Basu et al., 2002): the labelled images' class means start the centroids, three
   Lloyd steps on the unit, pool-centred features assign every unlabelled image, the labelled ones
   keep their labels (scikit-learn's ``KMeans`` cannot hold seeds fixed, hence the few lines here);
2. a logistic probe on the pool with those labels;
3. the prior centred on the unlabelled images' mean (as ``wordsight zeroshot`` centres on the
   images it classifies), its calibration ``T`` fitted against the k-means labels (hundreds of
   images, not the k labelled ones), added at ``T / 4``.

``--agree`` keeps only the k-means labels that the labelled-only image probe agrees with
(co-training's agreement filter) for steps 2 and 3.

Table 1, balanced pools (the dumps' pools: the same number of images per class): each cell is the
learner's accuracy on the test images minus the floor, in points, mean of 5 draws (>= 0 passes).
The floor is max(`wordsight zeroshot` on the test images, the image probe) - 1; for Fashion-MNIST,
the image probe + 2.9 (the issue's gain to keep) at k = 1, 2. The last column is the k-means
labels' accuracy on the unlabelled images at k = 1.

Table 2, imbalanced pools (the two-class tasks, seed 0, k = 1): the second class cut to 10% or
3% of the pool, as an inspection line's unlabelled images are mostly good parts. Cells are
balanced accuracy (the mean of the two classes' recalls) on the balanced test images.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from fewshot_dump import prior_log_proba, unit  # noqa: E402
from fewshot_k1_limits import load  # noqa: E402
from wordsight.estimator.prior_probe import PriorProbe, calibrate  # noqa: E402
from wordsight.evaluate.fewshot import draw_k_shot  # noqa: E402

KS = (1, 2, 4)
STEPS = 3
PRIOR_SHARE = 0.25
FLOOR_FASHION = 2.9
TWO_CLASS = ("fm-easy", "fm-hard", "fm-strong", "fm-boots", "lfw-faces")
MINORITY = (0.5, 0.1, 0.03)


def seeded_kmeans(Z: np.ndarray, idx: np.ndarray, ys: np.ndarray, n_classes: int) -> np.ndarray:
    """Labels of every row of ``Z`` (unit rows) after :data:`STEPS` Lloyd steps started at the
    labelled rows' class means; labelled rows keep their labels."""
    centroids = np.stack([Z[idx[ys == c]].mean(0) for c in range(n_classes)])
    for _ in range(STEPS):
        labels = (Z @ unit(centroids).T).argmax(1)
        labels[idx] = ys
        centroids = np.stack([Z[labels == c].mean(0) for c in range(n_classes)])
    return labels


def semi_supervised(d: dict, idx: np.ndarray, ys: np.ndarray, pool: np.ndarray,
                    agree: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(test scores, k-means labels of the unlabelled rows) of the learner in the module doc, the
    unlabelled images being the pool rows ``pool`` (``agree``: the ``--agree`` filter)."""
    from sklearn.linear_model import LogisticRegression

    rows, n_classes = np.concatenate([idx, pool]), len(d["classes"])
    X = d["Xp"][rows]
    labels = seeded_kmeans(unit(X - X.mean(0)), np.arange(len(idx)), ys, n_classes)
    keep = np.ones(len(rows), bool)
    if agree:
        probe = PriorProbe().fit(d["Xp"][idx], ys, np.zeros((len(idx), n_classes)), n_classes)
        keep[len(idx):] = labels[len(idx):] == probe.image_part(d["Xp"][pool], np.zeros((len(pool), n_classes)))[0].argmax(1)
    image = LogisticRegression(C=1.0, max_iter=500).fit(X[keep], labels[keep]).predict_log_proba(d["Xt"])
    centre = {w: unit(d[f"Vp_{w}"][pool]).mean(0) for w in d["ways"]}
    agreed = keep[len(idx):]
    T = calibrate(prior_log_proba(d, "p", centre)[pool][agreed], labels[len(idx):][agreed])
    return PRIOR_SHARE * T * prior_log_proba(d, "t", centre) + image, labels[len(idx):]


def default_and_image(d: dict, idx: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Test scores of the default learner (the prior centred on the other classes' share of the
    labelled images) and of the image probe alone."""
    n_classes = len(d["classes"])
    centre = {w: (n_classes - 1) / n_classes * unit(d[f"Vp_{w}"][idx]).mean(0) for w in d["ways"]}
    prior = prior_log_proba(d, "p", centre)[idx]
    default = PriorProbe().fit(d["Xp"][idx], ys, prior, n_classes)
    image = PriorProbe().fit(d["Xp"][idx], ys, np.zeros_like(prior), n_classes)
    zeros = np.zeros((len(d["yt"]), n_classes))
    return default.logits(d["Xt"], prior_log_proba(d, "t", centre)), image.image_part(d["Xt"], zeros)[0]


def balanced_row(d: dict, seed: int, agree: bool = False) -> tuple[dict, float]:
    """Points above the floor per (learner, k), and the k-means labels' accuracy at k = 1."""
    n_classes = len(d["classes"])
    labels = np.asarray(d["classes"])[d["yp"]].astype(object)
    zero = np.mean(prior_log_proba(d, "t", {w: unit(d[f"Vt_{w}"]).mean(0) for w in d["ways"]}).argmax(1) == d["yt"])
    gaps, kmeans_acc = {}, []
    for k in KS:
        acc = {"image": [], "default": [], "unlabelled": []}
        for i in range(5):
            idx = draw_k_shot(labels, k, seed + 1000 * i + k)
            ys = d["yp"][idx]
            pool = np.setdiff1d(np.arange(len(d["yp"])), idx)
            default, image = default_and_image(d, idx, ys)
            scores, pseudo = semi_supervised(d, idx, ys, pool, agree)
            for name, s in (("image", image), ("default", default), ("unlabelled", scores)):
                acc[name].append(np.mean(s.argmax(1) == d["yt"]))
            if k == 1:
                kmeans_acc.append(np.mean(pseudo == d["yp"][pool]))
        image_acc = np.mean(acc["image"])
        if n_classes == 10:
            floor = image_acc + (FLOOR_FASHION / 100 if k <= 2 else -0.01)
        else:
            floor = max(image_acc, zero) - 0.01
        for learner in ("default", "unlabelled"):
            gaps[learner, k] = 100 * (np.mean(acc[learner]) - floor)
    return gaps, 100 * float(np.mean(kmeans_acc))


def balanced_accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)]))


def imbalanced_row(d: dict, minority: float, agree: bool = False) -> dict:
    """Balanced accuracy % of image probe, default and semi-supervised at k = 1 (5 draws), the
    unlabelled pool cut to ``minority`` of the second class."""
    labels = np.asarray(d["classes"])[d["yp"]].astype(object)
    acc = {"image": [], "default": [], "unlabelled": []}
    for i in range(5):
        idx = draw_k_shot(labels, 1, 1000 * i + 1)
        ys = d["yp"][idx]
        rest = np.setdiff1d(np.arange(len(d["yp"])), idx)
        first, second = rest[d["yp"][rest] == 0], rest[d["yp"][rest] == 1]
        if minority < 0.5:
            n = max(1, round(len(first) * minority / (1 - minority)))
            second = np.random.default_rng(i).choice(second, n, replace=False)
        default, image = default_and_image(d, idx, ys)
        scores, _ = semi_supervised(d, idx, ys, np.concatenate([first, second]), agree)
        for name, s in (("image", image), ("default", default), ("unlabelled", scores)):
            acc[name].append(balanced_accuracy(s.argmax(1), d["yt"]))
    return {name: 100 * float(np.mean(v)) for name, v in acc.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dump", default="/tmp/wordsight-fewshot-dump")
    p.add_argument("--agree", action="store_true", help="keep only the k-means labels the image probe agrees with")
    args = p.parse_args(argv)
    dump = Path(args.dump)
    heads = [f"{learner} k={k}" for learner in ("default", "unlabelled") for k in KS]
    print("### balanced pools\n\n| task, seed | " + " | ".join(heads) + " | k-means labels k=1 % |")
    print("|---|" + "---|" * (len(heads) + 1))
    below = {"default": 0, "unlabelled": 0}
    for path in sorted(dump.glob("*_seed*.npz")):
        task, seed = path.stem.rsplit("_seed", 1)
        gaps, kmeans_acc = balanced_row(load(path), int(seed), args.agree)
        cells = []
        for learner in ("default", "unlabelled"):
            for k in KS:
                g = gaps[learner, k]
                below[learner] += g < 0
                cells.append(f"**{g:+.1f}**" if g < 0 else f"{g:+.1f}")
        print(f"| {task}, {seed} | " + " | ".join(cells) + f" | {kmeans_acc:.1f} |", flush=True)
    print(f"\ncells below the floor: default {below['default']}, unlabelled {below['unlabelled']}")
    print("\n### imbalanced pools (k = 1, seed 0, balanced accuracy %)\n")
    print("| task | second class in the pool | image probe | default | unlabelled |\n|---|---|---|---|---|")
    for task in TWO_CLASS:
        path = dump / f"{task}_seed0.npz"
        if path.exists():
            d = load(path)
            for minority in MINORITY:
                r = imbalanced_row(d, minority, args.agree)
                print(f"| {task} | {minority:.0%} | {r['image']:.1f} | {r['default']:.1f} | {r['unlabelled']:.1f} |",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
