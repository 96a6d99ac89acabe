"""Where a zero-shot tag is said present (issue 24): the raw log-odds against "none" (threshold 0)
against the reference shift of :mod:`wordsight.zeroshot.tags` (each tag's log-odds over the
concept bank's ImageNet things, its q quantile) at several q, on real photos and on mosaics.

Photos: scikit-image's sample photos (those that ship in the package), labelled here by hand with
the tags they show (none for textures, a page, a retina, the Hubble field). Mosaics: Fashion-MNIST
test mosaics (seed 1), 2x2 tiles beside the whole image as ``zeroshot --multilabel`` reads them.

    PYTHONPATH=src python benchmarks/multilabel_zeroshot_threshold.py --test 300
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from multilabel_mosaics import source  # noqa: E402
from wordsight.io.datasets import FASHION_MNIST_CLASSES  # noqa: E402
from wordsight.zeroshot import tags as tagging  # noqa: E402

PHOTO_TAGS = ["person", "cat", "cup", "rocket", "car", "bicycle", "motorcycle", "horse", "clock", "coin"]
PHOTOS = {"astronaut": {"person"}, "camera": {"person"}, "chelsea": {"cat"}, "clock": {"clock"}, "coffee": {"cup"},
          "coins": {"coin"}, "horse": {"horse"}, "rocket": {"rocket"}, "stereo_motorcycle": {"motorcycle"},
          "brick": set(), "grass": set(), "hubble_deep_field": set(), "immunohistochemistry": set(), "page": set(),
          "retina": set()}
QUANTILES = (0.8, 0.9, 0.95)


def photo_files(folder: Path) -> list[Path]:
    import skimage.data
    from PIL import Image

    out = []
    for name in PHOTOS:
        im = getattr(skimage.data, name)()
        im = np.asarray(im[0] if isinstance(im, tuple) else im)
        if im.dtype == bool:  # the horse is a silhouette
            im = im.astype(np.uint8) * 255
        elif im.dtype != np.uint8:
            im = (255 * (im - im.min()) / max(np.ptp(im), 1e-9)).astype(np.uint8)
        path = folder / f"{name}.jpg"
        Image.fromarray(im).convert("RGB").save(path)
        out.append(path)
    return out


def raw_and_shifts(tags, data, tiles: int):
    """(raw log-odds (N, tags) with the tiles' max, labels (N, tags), {q: offsets})."""
    pipe = tagging.tag_pipeline(tags, quiet=True).fit(data)
    fs = pipe.read(data)
    pipe.offsets_ = np.zeros(len(tags))  # raw: the shift is added back below per q
    z = tagging.tag_log_odds(pipe, pipe.reading(fs))
    if tiles:
        z = np.maximum(z, tagging.tile_log_odds(pipe, fs.samples, tiles, fs.paths))
    shifts = {}
    for q in QUANTILES:
        old, tagging.REFERENCE_QUANTILE = tagging.REFERENCE_QUANTILE, q
        try:
            shifts[q] = tagging.reference_offsets(pipe)
        finally:
            tagging.REFERENCE_QUANTILE = old
    return z, fs, shifts


def scores(Y, z, th) -> str:
    from sklearn.metrics import average_precision_score, f1_score

    d = z > th
    return (f"{average_precision_score(Y, z, average='macro'):.4f} | {f1_score(Y, d, average='micro', zero_division=0):.4f} | "
            f"{f1_score(Y, d, average='macro', zero_division=0):.4f} | {d.sum(1).mean():.2f}")


def table(name, tags, Y, z, shifts) -> None:
    print(f"\n| {name} | mAP | micro-F1 | macro-F1 | tags per image (true {Y.sum(1).mean():.2f}) |\n|---|---|---|---|---|")
    print(f"| raw log-odds > 0 (before) | {scores(Y, z, 0.0)} |")
    for q, th in shifts.items():
        print(f"| shifted to the ImageNet things' {q:g} quantile{' (default)' if q == tagging.REFERENCE_QUANTILE else ''} "
              f"| {scores(Y, z, th)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--test", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = photo_files(Path(tmp))
        z, fs, shifts = raw_and_shifts(PHOTO_TAGS, [str(f) for f in files], tagging.DEFAULT_TILES)
        Y = np.array([[t in PHOTOS[Path(p).stem] for t in PHOTO_TAGS] for p in fs.paths])
        table(f"{len(files)} scikit-image photos, 10 tags, 2x2 tiles", PHOTO_TAGS, Y, z, shifts)
    tags = sorted(FASHION_MNIST_CLASSES)
    for scales in (False, True):
        src = source("test", args.test, 1, scales)
        z, fs, shifts = raw_and_shifts(tags, src, tagging.DEFAULT_TILES)
        Y = np.array([[t in s.label for t in tags] for s in fs.samples])
        table(f"{args.test} mosaics{' (several scales)' if scales else ' (grids)'}, 2x2 tiles", tags, Y, z, shifts)


if __name__ == "__main__":
    main()
