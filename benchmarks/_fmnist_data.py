"""Fashion-MNIST as in-memory samples (PNG bytes), shared by the benchmark and its pre-embedding.

The PNG bytes are the same as ``wordsight data fashion-mnist`` writes, so the feature cache is
shared between the benchmark, the demo and the CLI.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from wordsight.io.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist, subset_indices
from wordsight.io.sources import Sample


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, "L").save(buf, format="PNG")
    return buf.getvalue()


def fashion_samples(split: str, per_class: int | None = None, limit: int | None = None,
                    seed: int = 0) -> list[Sample]:
    """A seeded, class-balanced subset of a split (nested: a smaller ``per_class`` is a prefix of
    each class's picks for a larger one). ``per_class=None`` and ``limit=None``: the whole split."""
    images, labels = load_fashion_mnist(split)
    idx = subset_indices(labels, limit=limit, per_class=per_class, seed=seed)
    return [Sample(f"fashion-mnist/{split}/{i:05d}.png", FASHION_MNIST_CLASSES[labels[i]],
                   data=png_bytes(images[i])) for i in idx]
