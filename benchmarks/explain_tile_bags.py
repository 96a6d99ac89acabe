"""Where the tag is: explanations through a tile bag and the mil head against the default tagger's
Grad-CAM, on Fashion-MNIST mosaics whose garments' cells are known.

    python benchmarks/explain_tile_bags.py [--train 300] [--test 40] [--lime-samples 0]

Trains two label-set models on the same seeded mosaics (2x2 and 3x3 grids of 28-px cells,
Fashion-MNIST's test split, images 0-4999 for training, 5000+ for the test mosaics): the mil head
over EfficientNet-Lite0 and ``tilebag:2,3:`` (13 tiles), and the default (logistic over the
global embedding and ``tiles:2:``). For every tag present in a test mosaic, each method's map of
that tag: the **pointing game** (the map's largest pixel lies in a cell that holds a garment of
the tag; ties: the first pixel) and the **mass share** (the share of the map's positive mass inside
the tag's cells; a uniform map scores the cells' share of the canvas, printed as "chance").
Prints one line per method with the seconds per explanation (machine load as it was).
"""
from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

CELL = 28


def mosaic_set(images, labels, classes, n: int, seed: int, folder: Path):
    """(manifest path, [(path, {class: [cells]}, grid)]): mosaics with their garments' cells."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    rows, truth = [], []
    for k in range(n):
        grid = int(rng.choice([2, 3]))
        cells = rng.choice(grid * grid, size=int(rng.integers(1, min(4, grid * grid) + 1)), replace=False)
        canvas = np.zeros((grid * CELL, grid * CELL), np.uint8)
        where: dict[str, list[int]] = {}
        for c in cells:
            i = int(rng.integers(0, len(images)))
            r0, c0 = (c // grid) * CELL, (c % grid) * CELL
            canvas[r0:r0 + CELL, c0:c0 + CELL] = images[i]
            where.setdefault(str(classes[int(labels[i])]), []).append(int(c))
        path = folder / "images" / f"{k:05d}.png"
        Image.fromarray(canvas, "L").save(path)
        rows.append([str(path), "|".join(sorted(where))])
        truth.append((str(path), where, grid))
    with open(folder / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "labels"])
        w.writerows(rows)
    return folder / "manifest.csv", truth


def scores(heat: np.ndarray, cells: list[int], grid: int) -> tuple[bool, float]:
    m = np.clip(heat, 0, None)
    inside = np.zeros_like(m, bool)
    for c in cells:
        r0, c0 = (c // grid) * CELL, (c % grid) * CELL
        inside[r0:r0 + CELL, c0:c0 + CELL] = True
    y, x = np.unravel_index(int(np.argmax(m)), m.shape)
    return bool(inside[y, x]), float(m[inside].sum() / m.sum()) if m.sum() > 0 else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", type=int, default=300)
    ap.add_argument("--test", type=int, default=40)
    ap.add_argument("--lime-samples", type=int, default=0, help="also LIME on the mil model (0: not run)")
    args = ap.parse_args()
    from wordsight.estimator import Classifier
    from wordsight.explain import explain
    from wordsight.io.datasets import FASHION_MNIST_CLASSES, find_fashion_mnist, load_fashion_mnist

    images, labels = load_fashion_mnist("test", root=find_fashion_mnist(download=False))
    tmp = Path(tempfile.mkdtemp())
    train, _ = mosaic_set(images[:5000], labels[:5000], FASHION_MNIST_CLASSES, args.train, 0, tmp / "train")
    _, truth = mosaic_set(images[5000:], labels[5000:], FASHION_MNIST_CLASSES, args.test, 1, tmp / "test")
    enc = "efficientnet-lite0"
    t = time.perf_counter()
    mil = Classifier(encoders=(enc, f"tilebag:2,3:{enc}"), task="multi-label", head="mil").fit(train)
    default = Classifier(encoders=(enc, f"tiles:2:{enc}"), task="multi-label").fit(train)
    print(f"fitted both on {args.train} mosaics in {time.perf_counter() - t:.0f} s")
    runs = [("mil + tilebag:2,3", mil, "tiles", {}), ("mil + tilebag:2,3", mil, "gradcam", {}),
            ("default (logistic, tiles:2)", default, "gradcam", {})]
    if args.lime_samples:
        runs.append(("mil + tilebag:2,3", mil, "lime", {"lime_samples": args.lime_samples}))
    chance = np.mean([len(cells) / grid ** 2 for _, where, grid in truth for cells in where.values()])
    print(f"{sum(len(w) for _, w, _ in truth)} (mosaic, present tag) pairs in {args.test} test mosaics; "
          f"chance mass share {chance:.3f}")
    for name, model, method, options in runs:
        explain(model, truth[0][0], method=method, **options)  # warm: models, concept bank
        hits, mass, n, t = 0, 0.0, 0, time.perf_counter()
        for path, where, grid in truth:
            for tag, cells in where.items():
                e = explain(model, path, method=method, target=tag, **options)[0]
                hit, share = scores(e.heatmap, cells, grid)
                hits, mass, n = hits + hit, mass + share, n + 1
        s = (time.perf_counter() - t) / n
        print(f"{name:28s} {method:8s} pointing {hits / n:.3f}  mass share {mass / n:.3f}  ({n} maps, {s:.2f} s/map)")


if __name__ == "__main__":
    main()
