"""Fashion-MNIST, the shared benchmark: load the standard splits, or write them as PNG folders."""
from __future__ import annotations

import gzip
import os
import urllib.request
from pathlib import Path

import numpy as np

FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot"]
_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
          "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
_DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"


def _candidates(root) -> list[Path]:
    dirs = [root, os.environ.get("WORDSIGHT_DATA") and Path(os.environ["WORDSIGHT_DATA"]) / "fashion-mnist",
            os.environ.get("WORDSIGHT_DATA"), _DEBIAN_DIR]
    return [Path(d) for d in dirs if d]


def find_fashion_mnist(root: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The folder holding the four IDX files: ``root``, ``$WORDSIGHT_DATA``, the Debian package's
    folder, or a fresh download from the canonical site when online."""
    for d in _candidates(root):
        if all((d / f).exists() for pair in _FILES.values() for f in pair):
            return d
    target = Path(root) if root else Path.home() / ".cache" / "wordsight" / "fashion-mnist"
    if download:
        try:
            target.mkdir(parents=True, exist_ok=True)
            for pair in _FILES.values():
                for f in pair:
                    if not (target / f).exists():
                        urllib.request.urlretrieve(_URL + f, target / (f + ".part"))
                        (target / (f + ".part")).rename(target / f)
            return target
        except OSError as e:
            reason = f"download failed ({e})"
    else:
        reason = "download disabled"
    raise FileNotFoundError(
        "Fashion-MNIST not found in " + ", ".join(map(str, _candidates(root))) + f"; {reason}. "
        "On Debian: apt-get install dataset-fashion-mnist; or set WORDSIGHT_DATA to a folder with the IDX files."
    )


def load_fashion_mnist(split: str = "train", root=None) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 28, 28), labels int64 (N,)) of the standard ``train`` or ``test`` split."""
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    folder = find_fashion_mnist(root)
    img_file, lbl_file = (folder / f for f in _FILES[split])
    with gzip.open(img_file, "rb") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(lbl_file, "rb") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    if len(images) != len(labels):
        raise ValueError(f"{folder}: {len(images)} images but {len(labels)} labels")
    return images, labels


def class_folder_name(name: str) -> str:
    """The folder that holds a class's images: a folder name cannot hold ``/``, so ``T-shirt/top``
    is written ``T-shirt-top``."""
    return name.replace("/", "-")


def folder_label_index(classes) -> dict[str, str]:
    """Map each label as it may appear on disk (the class name or its :func:`class_folder_name`)
    to the class name; an exact name wins over a folder spelling."""
    names = [str(c) for c in classes]
    return {**{class_folder_name(c): c for c in names}, **{c: c for c in names}}


def write_image_folder(out: str | os.PathLike, split: str = "train", limit: int | None = None,
                       per_class: int | None = None, root=None, seed: int = 0) -> Path:
    """Write a split as ``out/<split>/<class>/<index>.png`` (ImageFolder layout); existing files are
    kept, so an interrupted export resumes. ``limit``/``per_class`` take a seeded, stratified subset."""
    from PIL import Image

    images, labels = load_fashion_mnist(split, root)
    idx = subset_indices(labels, limit=limit, per_class=per_class, seed=seed)
    base = Path(out) / split
    for c in FASHION_MNIST_CLASSES:
        (base / class_folder_name(c)).mkdir(parents=True, exist_ok=True)
    for i in idx:
        path = base / class_folder_name(FASHION_MNIST_CLASSES[labels[i]]) / f"{i:05d}.png"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            Image.fromarray(images[i], "L").save(tmp, format="PNG")
            tmp.replace(path)
    return base


def subset_indices(labels: np.ndarray, limit: int | None = None, per_class: int | None = None,
                   seed: int = 0) -> np.ndarray:
    """A seeded, class-balanced subset: ``per_class`` of each class, or ``limit`` in total."""
    if limit is None and per_class is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    k = per_class if per_class is not None else -(-limit // len(classes))
    picks = [rng.permutation(np.flatnonzero(labels == c))[:k] for c in classes]
    idx = np.sort(np.concatenate(picks))
    if limit is not None and len(idx) > limit:
        idx = np.sort(rng.permutation(idx)[:limit])
    return idx
