"""Zero-shot tags per tile (issue 24): each tag's log-odds against "none" on the whole image, on its
best tile, and combined, on seeded Fashion-MNIST mosaics (no training label).

Variants (mAP = macro average precision over the 10 labels, F1 at 0.5):
- global: the whole image (``wordsight zeroshot --multilabel`` before tiles),
- tiles G: the best of G x G tiles alone,
- mean G: the mean of the whole image's and the best tile's log-odds (``--tiles G``),
- max G: the larger of the two.

    PYTHONPATH=src python benchmarks/multilabel_zeroshot_tiles.py --test 300 [--scales] [--grids 2,3]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from multilabel_mosaics import scores, source  # noqa: E402
from wordsight._util.numerics import sigmoid  # noqa: E402
from wordsight.estimator.tasks import MultiLabelTask  # noqa: E402
from wordsight.io.datasets import FASHION_MNIST_CLASSES  # noqa: E402
from wordsight.zeroshot.tags import tag_log_odds, tag_pipeline, tile_log_odds  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--test", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scales", action="store_true")
    ap.add_argument("--grids", default="2,3")
    args = ap.parse_args()
    test = source("test", args.test, args.seed, args.scales)
    classes = sorted(FASHION_MNIST_CLASSES)
    task = MultiLabelTask(np.full(len(classes), 0.5))
    Y = task.targets(test.labels, classes)
    t = time.time()
    pipe = tag_pipeline(classes, quiet=True).fit(test)
    fs = pipe.read(test)
    z = tag_log_odds(pipe, pipe.reading(fs))
    rows = [{"variant": "global", **scores(task, Y, sigmoid(z), classes), "seconds": round(time.time() - t, 1)}]
    print(json.dumps(rows[-1]), flush=True)
    for g in (int(v) for v in args.grids.split(",")):
        t = time.time()
        tz = tile_log_odds(pipe, fs.samples, g, fs.paths)
        s = round(time.time() - t, 1)
        for name, v in ((f"tiles {g}", tz), (f"mean {g}", 0.5 * (z + tz)), (f"max {g}", np.maximum(z, tz))):
            rows.append({"variant": name, **scores(task, Y, sigmoid(v), classes), "seconds": s})
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n| variant | mAP | micro-F1 | macro-F1 |  ({args.test} test mosaics{', several scales' if args.scales else ''}; "
          f"label-frequency baseline mAP {rows[0]['frequency_baseline_mAP']:.4f})")
    for r in rows:
        print(f"| {r['variant']} | {r['mAP']:.4f} | {r['micro_f1']:.4f} | {r['macro_f1']:.4f} |")


if __name__ == "__main__":
    main()
