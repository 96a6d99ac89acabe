"""One decode, many views (issue 24): photo-sized JPEGs read as the whole image + 2x2 tiles on a cold
cache, a loop of ``extract_features`` per view (each image read, hashed and decoded once per view)
against one ``extract_views`` (once per image), in alternating rounds of one process; with ``--cli``
also ``wordsight zeroshot --multilabel`` (2x2 tiles, the default) on the same files, the code before
(``--before-src``, e.g. main's checkout) against this one, each on a fresh feature cache.

The files: scikit-image's astronaut, coffee and chelsea (in turn) resized to ``--megapixels`` (4:3),
a little seeded noise added (photo-like entropy, every file's bytes distinct), JPEG quality 90.

    OMP_NUM_THREADS=1 PYTHONPATH=src nice python benchmarks/multi_view_read.py --n 12 --rounds 2 \\
        [--cli --before-src /work/main/src]

``--mosaics N``: instead, N seeded Fashion-MNIST mosaics (small PNGs) read as the mil head's tile bag
(``tilebag:2,3:``: 13 tile views, tiny images at the small input size): the loop against one read.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

ENC = "efficientnet-lite0"
PHOTOS = ("astronaut", "coffee", "chelsea")


def write_photos(folder: Path, n: int, megapixels: float) -> list[str]:
    from skimage import data

    w = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    h = w * 3 // 4
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        img = np.asarray(Image.fromarray(getattr(data, PHOTOS[i % 3])()).convert("RGB").resize((w, h)), np.int16)
        img = np.clip(img + rng.normal(0, 4, img.shape).astype(np.int16), 0, 255).astype(np.uint8)
        path = folder / f"{i:03d}-{PHOTOS[i % 3]}.jpg"
        Image.fromarray(img).save(path, quality=90)
        paths.append(str(path))
    return paths


class Decodes:
    """Counts the real decoder's calls (features.engines.batch.decode_image)."""

    def __init__(self):
        from wordsight.features.engines import batch

        self.n, self.lock, real = 0, threading.Lock(), batch.decode_image

        def counted(data, **kw):
            with self.lock:
                self.n += 1
            return real(data, **kw)

        batch.decode_image = counted


VIEWS: list = []  # the views read: set by main()


def whole_and_2x2():
    from wordsight.features.views import tile_view

    return [(None, ""), *(tile_view(None, 2, i) for i in range(4))]


def bag_2_3():
    from wordsight.features.views import tile_view

    return [tile_view(None, g, i) for g in (2, 3) for i in range(g * g)]


def views():
    return VIEWS


def per_view_loop(paths, cache):
    from wordsight.features import extract_features

    return [extract_features(paths, ENC, view=fn, view_key=key, cache=cache, quiet=True) for fn, key in views()]


def multi_view(paths, cache):
    from wordsight.features import extract_views

    return list(extract_views(paths, ENC, views(), cache=cache, quiet=True))


def write_mosaic_files(folder: Path, n: int) -> list[str]:
    from wordsight.io.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist
    from wordsight.io.mosaics import mosaics, write_mosaics
    from wordsight.io.sources import open_source

    images, labels = load_fashion_mnist("test")
    manifest = write_mosaics(folder, mosaics(images, labels, FASHION_MNIST_CLASSES, n, seed=1))
    return [s.path for s in open_source(manifest).samples]


def library(paths, root: Path, rounds: int) -> list[dict]:
    from wordsight.features import extract_features

    counter = Decodes()
    extract_features(paths[:1], ENC, cache=False, quiet=True)  # the model loaded before any timing
    rows, results = [], {}
    for r in range(rounds):
        for name, run in (("per-view loop", per_view_loop), ("extract_views", multi_view)):
            before, t = counter.n, time.perf_counter()
            results[name] = run(paths, root / f"cache-{name[:4]}-{r}")
            rows.append({"round": r, "mode": name, "seconds": round(time.perf_counter() - t, 2),
                         "decodes": counter.n - before, "images": len(paths), "views": len(views())})
            print(json.dumps(rows[-1]), flush=True)
    diff = max(float(np.abs(a.embeddings - b.embeddings).max())
               for a, b in zip(results["per-view loop"], results["extract_views"]))
    print(json.dumps({"max_abs_embedding_difference": diff}), flush=True)
    return rows


def cli(paths, root: Path, rounds: int, before_src: str) -> list[dict]:
    here = str(Path(__file__).resolve().parents[1] / "src")
    folder = str(Path(paths[0]).parent)
    rows = []
    for r in range(rounds):  # "warm": the same command again on the cache it filled (what is not extraction)
        for name, src, cache in (("before", before_src, f"before-{r}"), ("after", here, f"after-{r}"),
                                 ("after, warm cache", here, f"after-{r}")):
            env = {**os.environ, "PYTHONPATH": src}
            cmd = [sys.executable, "-m", "wordsight", "zeroshot", folder, "--classes", "cat,coffee cup,astronaut,rocket",
                   "--multilabel", "--quiet", "--cache-dir", str(root / f"cli-{cache}")]
            t = time.perf_counter()
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
            rows.append({"round": r, "cli": name, "src": src, "seconds": round(time.perf_counter() - t, 2),
                         "lines": len(out.splitlines())})
            print(json.dumps(rows[-1]), flush=True)
            rows[-1]["output"] = out
    outs = {r["output"] for r in rows}
    print(json.dumps({"cli_outputs_identical": len(outs) == 1}), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--megapixels", type=float, default=12.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--cli", action="store_true")
    ap.add_argument("--before-src", default="/work/main/src")
    ap.add_argument("--mosaics", type=int, default=0)
    args = ap.parse_args()
    VIEWS[:] = bag_2_3() if args.mosaics else whole_and_2x2()
    print(json.dumps({"load_average": os.getloadavg(), "cpus": os.cpu_count(),
                      "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "photos").mkdir()
        paths = (write_mosaic_files(root / "photos", args.mosaics) if args.mosaics
                 else write_photos(root / "photos", args.n, args.megapixels))
        size = sum(os.path.getsize(p) for p in paths) / len(paths) / 1e6
        print(json.dumps({"files": len(paths), "mean_mb": round(size, 2), "size": Image.open(paths[0]).size}), flush=True)
        rows = library(paths, root, args.rounds)
        for mode in ("per-view loop", "extract_views"):
            best = min(r["seconds"] for r in rows if r["mode"] == mode)
            print(f"| {mode} | {best:.2f} s | {rows[[r['mode'] for r in rows].index(mode)]['decodes']} decodes |")
        loop = [r["seconds"] for r in rows if r["mode"] == "per-view loop"]
        multi = [r["seconds"] for r in rows if r["mode"] == "extract_views"]
        print(json.dumps({"ratio_per_round": [round(a / b, 2) for a, b in zip(loop, multi)]}), flush=True)
        if args.cli:
            cli(paths, root, args.rounds, args.before_src)
        print(json.dumps({"load_average_end": os.getloadavg()}), flush=True)


if __name__ == "__main__":
    main()
