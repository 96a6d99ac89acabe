"""Seeded multi-label mosaics of small images: a reproducible multi-label benchmark from what is
offline (Fashion-MNIST garments on an empty canvas).

Each mosaic is a ``grid`` x ``grid`` canvas of ``cell``-pixel cells, each cell empty or holding one
random image; 1 to ``max_objects`` objects per mosaic; its labels are the classes present (a set:
two shirts are one label). With ``scales``, each object is resized to a random size between a
quarter cell and a whole cell and placed at a random offset in its cell, so that the same class
appears small and large.
"""
from __future__ import annotations

import numpy as np


def mosaic(images: np.ndarray, labels: np.ndarray, classes, rng: np.random.Generator, grid: int = 2,
           cell: int = 28, max_objects: int = 4, scales: bool = False) -> tuple[np.ndarray, tuple[str, ...]]:
    """One (grid*cell, grid*cell) uint8 mosaic and its label set (sorted class names)."""
    from PIL import Image

    n_cells = grid * grid
    k = int(rng.integers(1, min(max_objects, n_cells) + 1))
    cells = rng.choice(n_cells, size=k, replace=False)
    picks = rng.integers(0, len(images), size=k)
    canvas = np.zeros((grid * cell, grid * cell), np.uint8)
    for c, i in zip(cells, picks):
        img = images[i]
        size = cell
        if scales:
            size = int(rng.integers(cell // 4, cell + 1))
            img = np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BILINEAR))
        r0, c0 = (c // grid) * cell, (c % grid) * cell
        dy, dx = (int(rng.integers(0, cell - size + 1)) for _ in range(2)) if scales else (0, 0)
        region = canvas[r0 + dy:r0 + dy + size, c0 + dx:c0 + dx + size]
        np.maximum(region, img[:size, :size], out=region)
    return canvas, tuple(sorted({str(classes[int(labels[i])]) for i in picks}))


def mosaics(images: np.ndarray, labels: np.ndarray, classes, n: int, seed: int = 0, grids=(2, 3), cell: int = 28,
            max_objects: int = 4, scales: bool = False) -> list[tuple[np.ndarray, tuple[str, ...]]]:
    """``n`` mosaics (each of a grid drawn from ``grids``), seeded: the same arguments give the
    same mosaics."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        grid = int(grids[int(rng.integers(0, len(grids)))])
        out.append(mosaic(images, labels, classes, rng, grid, cell, max_objects, scales))
    return out


def write_mosaics(folder, items, name: str = "manifest.csv") -> str:
    """PNG files and a CSV manifest (``path,labels``, labels ``|``-separated) in ``folder``."""
    import csv
    from pathlib import Path

    from PIL import Image

    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    with open(folder / name, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "labels"])
        for i, (img, labs) in enumerate(items):
            rel = f"images/{i:06d}.png"
            Image.fromarray(img, "L").save(folder / rel)
            w.writerow([rel, "|".join(labs)])
    return str(folder / name)
