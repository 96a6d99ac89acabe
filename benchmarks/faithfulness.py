"""Faithfulness of the heatmaps: deleting the 20% most salient pixels vs a random 20%.

    python benchmarks/faithfulness.py [--model efficientnet-lite0] [--lime-samples 200] [--shap-evals 200]

On scikit-image's colour photos (each a different subject), for the encoder's ImageNet head and
for a wordsight Classifier (concat fusion, logistic head) fitted on flipped copies of them plus
crops: for each method, the mean drop of the predicted class's probability when its most salient
20% of the model's view is deleted (filled in from the surrounding pixels, ROAD's imputation;
--fill blur: a blurred copy; --fill mean: the encoder's mean colour), against a random 20%
(scattered pixels, and smooth random blobs as coarse as a Grad-CAM map), and how often the
salient deletion hurts more. Prints one line per (model, method) and the seconds per image.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from PIL import Image

from wordsight.estimator.heads import LogisticHead

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")  # the natural colour photos that ship offline
OTHERS = ("immunohistochemistry", "hubble_deep_field", "retina", "colorwheel")  # --all: far from ImageNet


def photos(folder: Path, names) -> list[Path]:
    from skimage import data

    paths = []
    for name in names:
        try:
            arr = getattr(data, name)()
        except Exception:  # a photo that needs a download when offline
            continue
        if arr.ndim != 3:
            continue
        p = folder / f"{name}.png"
        Image.fromarray(arr[..., :3]).save(p)
        paths.append(p)
    return paths


def train_folder(folder: Path) -> Path:
    """Flipped and cropped copies of the first four photos, one class each."""
    from skimage import data

    root = folder / "train"
    for name in PHOTOS[:4]:
        img = Image.fromarray(getattr(data, name)()[..., :3])
        (root / name).mkdir(parents=True)
        img.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(root / name / "flip.png")
        w, h = img.size
        img.crop((w // 8, h // 8, w - w // 8, h - h // 8)).save(root / name / "crop.png")
    return root


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--lime-samples", type=int, default=200)
    ap.add_argument("--shap-evals", type=int, default=200, help="SHAP: model calls per image")
    ap.add_argument("--methods", default="gradcam,gradcam++,lime,shap")
    ap.add_argument("--fill", default="impute", choices=["impute", "blur", "mean"])
    ap.add_argument("--all", action="store_true", help="add microscopy, astronomy, retina and colour-wheel images")
    ap.add_argument("--subjects", default="imagenet,classifier")
    ap.add_argument("--fashion", type=int, default=0,
                    help="also: a Classifier fitted on 50 Fashion-MNIST images per class, on this many test images")
    args = ap.parse_args()
    from wordsight.estimator import Classifier
    from wordsight.explain import deletion_check

    tmp = Path(tempfile.mkdtemp())
    images = photos(tmp, PHOTOS + (OTHERS if args.all else ()))
    subjects = {}
    if "imagenet" in args.subjects:
        subjects[f"{args.model} ImageNet head"] = args.model
    if "classifier" in args.subjects:
        clf = Classifier(encoders=(args.model,), fusion="concat", head=LogisticHead(C=1.0)).fit(train_folder(tmp))
        subjects[f"Classifier({args.model}, concat, logistic)"] = clf
    print(f"{len(images)} images: {', '.join(p.stem for p in images)}; 20% of the view deleted (fill: {args.fill})")
    runs = [(label, subject, images) for label, subject in subjects.items()]
    if args.fashion:
        from wordsight.io.datasets import write_image_folder

        write_image_folder(tmp / "fm", "train", per_class=50)
        write_image_folder(tmp / "fm", "test", per_class=max(1, args.fashion // 10))
        fm = sorted((tmp / "fm" / "test").rglob("*.png"))[: args.fashion]
        runs.append((f"Classifier({args.model}, image, logistic) on Fashion-MNIST ({len(fm)} test images)",
                     Classifier(encoders=(args.model,)).fit(tmp / "fm" / "train"), fm))
    for label, subject, images in runs:
        for method in args.methods.split(","):
            opts = {"lime": {"lime_samples": args.lime_samples}, "shap": {"shap_evals": args.shap_evals}}.get(method, {})
            t = time.perf_counter()
            r = deletion_check(subject, images, method=method, fraction=0.2, fill=args.fill, **opts)
            dt = (time.perf_counter() - t) / len(images)
            d, w = r["mean_drop"], r["salient_beats_random"]
            print(f"{label:45s} {method:9s} drop salient {d['salient']:.3f} | random pixels {d['random_pixels']:.3f}"
                  f" | random blobs {d['random_blobs']:.3f} | salient hurts more on "
                  f"{w['random_pixels']:.0%} / {w['random_blobs']:.0%} of images | {dt:.1f} s/image")


if __name__ == "__main__":
    main()
