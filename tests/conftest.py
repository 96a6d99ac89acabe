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
