"""Multi-label tagging on seeded Fashion-MNIST mosaics (issue 24).

Mosaics (wordsight.io.mosaics): 2x2 or 3x3 grids of 28-px cells on a black canvas, 1-4 garments,
labels = the classes present; ``--scales``: each garment resized to 7-28 px at a random place in
its cell. Training mosaics are drawn from Fashion-MNIST's training images, test mosaics from its
test images. Compared, on the same test mosaics (mAP = macro average precision; F1 at each model's
thresholds):

- label-frequency baseline (every label scored by a constant: its AP is its share of the images),
- global embedding (EfficientNet-Lite0) + one-vs-rest logistic,
- tiles (``tiles:2:efficientnet-lite0``: max + mean over 2x2 tiles) + the same head,
- global + tiles concatenated + the same head,
- the multiple-instance head (``--models mil2,mil13``): the global embedding and a tile bag
  (``tilebag:2:`` or ``tilebag:2,3:efficientnet-lite0``: each tile read as its own image), per-tile
  label scores pooled by log-sum-exp plus the global term, lam by 3-fold cross-validated mAP,
- zero-shot tags (the class names against "none", no training label), on the whole image and with
  2x2 tiles (``wordsight zeroshot --multilabel``'s default).

    PYTHONPATH=src python benchmarks/multilabel_mosaics.py --train 1000 --test 500 [--scales]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _fmnist_data import png_bytes  # noqa: E402
from wordsight.estimator import Classifier  # noqa: E402
from wordsight.estimator.tasks import MultiLabelTask  # noqa: E402
from wordsight.evaluate.multi_label import label_set_scores  # noqa: E402
from wordsight.io.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist  # noqa: E402
from wordsight.io.mosaics import mosaics  # noqa: E402
from wordsight.io.sources import Sample, Source  # noqa: E402

GLOBAL, TILES = "efficientnet-lite0", "tiles:2:efficientnet-lite0"
BAG2, BAG13 = "tilebag:2:efficientnet-lite0", "tilebag:2,3:efficientnet-lite0"


def source(split: str, n: int, seed: int, scales: bool) -> Source:
    images, labels = load_fashion_mnist(split)
    items = mosaics(images, labels, FASHION_MNIST_CLASSES, n, seed=seed, scales=scales)
    tag = "scales" if scales else "grid"
    return Source([Sample(f"mosaics-{tag}/{split}/{seed}/{i:05d}.png", labs, data=png_bytes(img))
                   for i, (img, labs) in enumerate(items)], [])


def scores(task, Y, P, classes) -> dict:
    m = label_set_scores(task, Y, P, classes)
    return {k: round(m[k], 4) for k in ("mAP", "micro_f1", "macro_f1", "frequency_baseline_mAP")}


MODELS = {"global": ("global + OvR logistic", (GLOBAL,), "logistic"),
          "tiles": ("tiles 2x2 + OvR logistic", (TILES,), "logistic"),
          "both": ("global + tiles + OvR logistic", (GLOBAL, TILES), "logistic"),
          "mlp": ("global + tiles + MLP (asymmetric loss)", (GLOBAL, TILES), "mlp"),
          "mil2": ("global + 2x2 tile bag + mil head (5 reads per image)", (GLOBAL, BAG2), "mil"),
          "mil13": ("global + 2x2 and 3x3 tile bag + mil head (14 reads per image)", (GLOBAL, BAG13), "mil")}


def run(train: Source, test: Source, log, models=tuple(MODELS), zero_shot: bool = True) -> list[dict]:
    rows = []
    for key in models:
        name, encoders, head = MODELS[key]
        t = time.time()
        clf = Classifier(task="multi-label", encoders=encoders, head=head).fit(train)
        P = clf.predict_proba(test)
        Y = clf.task_.targets(test.labels, clf.classes_)
        rows.append({"model": name, **scores(clf.task_, Y, P, clf.classes_), "C": clf.head_.info.get("C"),
                     **({"lam": clf.head_.info["lam"]} if "lam" in clf.head_.info else {}),
                     "seconds": round(time.time() - t, 1)})
        log(rows[-1])
    if not zero_shot:
        return rows
    from wordsight.zeroshot.tags import DEFAULT_TILES, tag_pipeline, tag_probabilities

    classes = np.array(sorted(FASHION_MNIST_CLASSES))
    pipe = tag_pipeline(list(classes), quiet=True).fit(test)
    task = MultiLabelTask(np.full(len(classes), 0.5))
    Y = task.targets(test.labels, classes)
    for tiles, name in ((0, "zero-shot tags (names vs 'none'), whole image"),
                        (DEFAULT_TILES, f"zero-shot tags + {DEFAULT_TILES}x{DEFAULT_TILES} tiles (zeroshot's default)")):
        t = time.time()
        P, _ = tag_probabilities(pipe, test, tiles=tiles)
        rows.append({"model": name, **scores(task, Y, P, classes), "seconds": round(time.time() - t, 1)})
        log(rows[-1])
    return rows


def print_table(rows: list[dict], what: str) -> None:
    """The rows as a markdown table (mAP, F1, the penalty chosen, seconds); the label-frequency
    baseline of the (shared) test mosaics in the title."""
    print(f"\n| model | mAP | micro-F1 | macro-F1 | C or lam | s |  ({what}; label-frequency baseline mAP "
          f"{rows[0]['frequency_baseline_mAP']:.4f})")  # the same test mosaics for every row
    for r in rows:
        pen = r.get("lam", r.get("C"))
        print(f"| {r['model']} | {r['mAP']:.4f} | {r['micro_f1']:.4f} | {r['macro_f1']:.4f} | "
              f"{'' if pen is None else f'{pen:g}'} | {r['seconds']} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=1000)
    ap.add_argument("--test", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scales", action="store_true", help="objects at several scales")
    ap.add_argument("--models", default="global,tiles,both", help=f"comma-separated, of {', '.join(MODELS)}")
    ap.add_argument("--no-zero-shot", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    train = source("train", args.train, args.seed, args.scales)
    test = source("test", args.test, args.seed + 1, args.scales)
    rows = run(train, test, lambda r: print(json.dumps(r), flush=True), args.models.split(","), not args.no_zero_shot)
    print_table(rows, f"{args.train} training / {args.test} test mosaics{', several scales' if args.scales else ''}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
