"""Shared fixtures: every test builds its own small files; features are cached per session."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """A fresh feature cache for the whole session, never the user's ~/.cache.

    ``WORDSIGHT_TEST_CACHE`` names a folder to use instead, kept between sessions: the mutation
    run (scripts/mutation.py) reruns a few test files hundreds of times and would otherwise embed
    the 1,000 ImageNet concept texts again each time (70 s on 2 cores)."""
    keep = os.environ.get("WORDSIGHT_TEST_CACHE")
    path = Path(keep) if keep else tmp_path_factory.mktemp("wordsight-cache")
    old = os.environ.get("WORDSIGHT_CACHE")
    os.environ["WORDSIGHT_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("WORDSIGHT_CACHE", None)
    else:
        os.environ["WORDSIGHT_CACHE"] = old


@pytest.fixture(scope="session")
def cat_image():
    """scikit-image's cat photo (chelsea) as a PIL image."""
    from PIL import Image
    from skimage import data

    return Image.fromarray(data.chelsea())


@pytest.fixture(scope="session")
def fashion_mnist_root() -> Path:
    """The folder with the Fashion-MNIST IDX files ($WORDSIGHT_DATA or the Debian package's); the
    tests never download it: without it they skip and say how to install it."""
    from wordsight.io.datasets import find_fashion_mnist

    try:
        return find_fashion_mnist(download=False)
    except FileNotFoundError as e:
        pytest.skip(f"Fashion-MNIST is not installed (tests never download it): {e}")


@pytest.fixture(scope="session")
def fashion_folder(tmp_path_factory, fashion_mnist_root) -> Path:
    """A small Fashion-MNIST ImageFolder tree: 6 train and 4 test PNGs per class."""
    from wordsight.io.datasets import write_image_folder

    root = tmp_path_factory.mktemp("fashion")
    write_image_folder(root, "train", per_class=6, root=fashion_mnist_root)
    write_image_folder(root, "test", per_class=4, root=fashion_mnist_root)
    return root


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory) -> Path:
    """Real photos from scikit-image in a two-class ImageFolder tree (JPEG)."""
    from PIL import Image
    from skimage import data

    root = tmp_path_factory.mktemp("photos")
    groups = {"cat": [data.chelsea()], "coffee": [data.coffee()], "rocket": [data.rocket()],
              "astronaut": [data.astronaut()]}
    for label, arrays in groups.items():
        (root / label).mkdir()
        for i, arr in enumerate(arrays):
            img = Image.fromarray(np.asarray(arr))
            img.save(root / label / f"{i}.jpg", quality=90)
            img.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(root / label / f"{i}_flip.jpg", quality=90)
    return root


# Paired text (issue 12): the colour of an image and the condition named by its own text make the
# class; the image alone tells only the colour, the text alone only the condition.
PAIRED_COLOURS = {"red": (200, 30, 30), "blue": (30, 30, 200)}
PAIRED_TEXTS = {"new": ["brand new, never used", "new in its box", "unused and pristine"],
                "used": ["worn out and scratched", "heavily used, with stains", "old and battered"]}


@pytest.fixture(scope="session")
def paired_manifests(tmp_path_factory) -> tuple[Path, Path]:
    """(train.csv, test.csv): manifests ``path,label,text`` of 32-px noisy red or blue squares,
    classes ``<colour>-<condition>``; 6 training and 3 test images per class."""
    import csv

    from PIL import Image

    root = tmp_path_factory.mktemp("paired")
    rng = np.random.default_rng(0)
    out = []
    for split, n in (("train", 6), ("test", 3)):
        rows = []
        for colour, rgb in PAIRED_COLOURS.items():
            for condition, texts in PAIRED_TEXTS.items():
                for i in range(n):
                    a = np.clip(np.asarray(rgb) + rng.normal(0, 40, (32, 32, 3)), 0, 255).astype(np.uint8)
                    name = f"{split}-{colour}-{condition}-{i}.png"
                    Image.fromarray(a).save(root / name)
                    rows.append({"path": name, "label": f"{colour}-{condition}", "text": texts[i % len(texts)]})
        with open(root / f"{split}.csv", "w", newline="") as f:
            w = csv.DictWriter(f, ["path", "label", "text"])
            w.writeheader()
            w.writerows(rows)
        out.append(root / f"{split}.csv")
    return out[0], out[1]
