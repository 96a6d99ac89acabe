"""Descriptions that discriminate, on Fashion-MNIST: what each step of `describe-classes` adds.

The zero-shot pipeline with its defaults (view chosen from the images, both ways into the text
space averaged, centred on the unlabelled images' mean) classifies the 10,000 test images with
class texts built step by step from a start (the SmolLM2-135M descriptions saved by
``zeroshot_fashion_mnist.py``, or the hand-written file):

  as written -> + class name and prompt templates -> + FuDD differential descriptions (pairs
  confused on the training images, answers by the packaged SmolLM2) -> selection with
  pseudo-labels on the unlabelled training images, or with the training images' labels.

Every choice (pairs, selection, the centring mean) uses the 1,000 training images (100 per
class) only; the test set is scored once per row. Beside every row, WaffleCLIP: the same steps
with the description texts replaced by as many random-word descriptors per class.

    nice python benchmarks/describe_classes_fashion_mnist.py
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
from wordsight.io.datasets import FASHION_MNIST_CLASSES  # noqa: E402
from wordsight.text.descriptions import load_class_descriptions, save_class_descriptions  # noqa: E402
from wordsight.zeroshot.pipeline import ZeroShotPipeline  # noqa: E402
from wordsight.zeroshot.refine import describe_classes  # noqa: E402
from wordsight.zeroshot.text_classifier import waffle_descriptors  # noqa: E402

RESULTS = Path("benchmarks/results/zeroshot_fashion_mnist")
STARTS = {"SmolLM2": RESULTS / "class_descriptions.json", "hand-written": RESULTS / "hand_written_descriptions.json"}
VIEW = "light-background"  # what view auto chooses for Fashion-MNIST (99.8% of images have a dark frame)
# (label, names and templates, FuDD pairs, selection)
STEPS = [("as written", False, 0, "none"),
         ("+ name and templates", True, 0, "none"),
         ("+ FuDD", True, 6, "none"),
         ("+ name and templates, selected (pseudo-labels)", True, 0, "pseudo"),
         ("+ FuDD, selected (pseudo-labels)", True, 6, "pseudo"),
         ("+ name and templates, selected (training labels)", True, 0, "labels"),
         ("+ FuDD, selected (training labels)", True, 6, "labels")]


def reading_of(split, per_class, classes):
    zs = ZeroShotPipeline(classes)
    zs.view_ = VIEW
    fs = zs.read(fashion_samples(split, per_class=per_class))
    if fs.failures:
        raise RuntimeError(f"{len(fs.failures)} images failed")
    return zs.reading(fs), np.asarray([classes.index(lab) for lab in fs.labels])


def score(classes, pool, train, test):
    zs = ZeroShotPipeline(classes, method="descriptions", descriptions=pool).fit(reading=train[0], view=VIEW)
    acc = {}
    for name, (reading, y) in (("train", train), ("test", test)):
        acc[name] = float(np.mean(zs.log_proba_reading(reading).argmax(1) == y))
    return acc


def waffle_like(pool, seed=0):
    """The same pool with every description text (LLM, user or FuDD) replaced by a random-word
    WaffleCLIP descriptor; names and templates stay."""
    out = {}
    for c, entries in pool.items():
        n = sum(e["source"] not in ("name", "template") for e in entries)
        keep = [e for e in entries if e["source"] in ("name", "template")]
        out[c] = keep + [{"text": t, "source": "waffle"} for t in waffle_descriptors(c, n, seed)]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train-per-class", type=int, default=100)
    ap.add_argument("--test-per-class", type=int, default=None, help="default: all 10,000 test images")
    ap.add_argument("--llm", default="local", help="who writes the differential descriptions")
    ap.add_argument("--out", default="benchmarks/results/describe_classes_fashion_mnist")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    classes = list(FASHION_MNIST_CLASSES)
    t0 = time.time()
    train = reading_of("train", args.train_per_class, classes)
    test = reading_of("test", args.test_per_class, classes)
    print(f"read {len(train[1])} training and {len(test[1])} test images ({time.time() - t0:.0f} s)", flush=True)
    rows = []
    for start_name, path in STARTS.items():
        start = load_class_descriptions(path, classes)
        source = "llm" if start_name == "SmolLM2" else "user"
        start = {c: [{"text": t, "source": source} for t in v] for c, v in start.items()}
        for label, extras, pairs, select in STEPS:
            t = time.time()
            pool, prov = describe_classes(classes, reading=train[0], labels=train[1], descriptions=start,
                                          llm=args.llm, names=extras, templates=extras, pairs=pairs, select=select,
                                          pipeline=_pipeline(classes))
            waffle = waffle_like(pool)
            if select != "none":  # the control goes through the same selection on the same images
                waffle, _ = describe_classes(classes, reading=train[0], labels=train[1], descriptions=waffle,
                                             llm="none", names=False, templates=False, pairs=0, select=select,
                                             pipeline=_pipeline(classes))
            acc, wacc = score(classes, pool, train, test), score(classes, waffle, train, test)
            kept = sum(e.get("weight", 1) > 0 for v in pool.values() for e in v)
            row = {"start": start_name, "step": label, "train": acc["train"], "test": acc["test"],
                   "waffle_train": wacc["train"], "waffle_test": wacc["test"], "texts": sum(map(len, pool.values())),
                   "kept": kept, "pairs": prov.get("pairs"), "seconds": round(time.time() - t)}
            rows.append(row)
            print(f"{start_name:12s} {label:50s} train {100 * acc['train']:.1f}% test {100 * acc['test']:.1f}%  "
                  f"(waffle {100 * wacc['test']:.1f}%)  kept {kept}/{row['texts']}  {row['seconds']} s"
                  + (f"  pairs {prov['pairs']}" if prov.get("pairs") else ""), flush=True)
            if label == STEPS[-1][0]:
                save_class_descriptions(pool, out / f"classes_{start_name}.json", provenance=prov)
    result = {"view": VIEW, "train_images": len(train[1]), "test_images": len(test[1]), "rows": rows,
              "seconds": round(time.time() - t0)}
    (out / "results.json").write_text(json.dumps(result, indent=2))
    print("\n| start | step | train acc | test acc | WaffleCLIP (same steps) test acc | texts kept |\n"
          "|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['start']} | {r['step']} | {100 * r['train']:.1f}% | {100 * r['test']:.1f}% | "
              f"{100 * r['waffle_test']:.1f}% | {r['kept']}/{r['texts']} |")
    print(f"\nresults and the class files written: {out}/  ({time.time() - t0:.0f} s)")
    return 0


def _pipeline(classes):
    zs = ZeroShotPipeline(classes, method="descriptions")
    zs.view_ = VIEW
    return zs


if __name__ == "__main__":
    sys.exit(main())
