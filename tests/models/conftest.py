"""Features of the small Fashion-MNIST folder, extracted once per session and shared."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def fashion_blocks(fashion_folder):
    """(train, test) FeatureBlocks of the default encoder: 60 train and 40 test images."""
    from wordsight.models import Classifier

    clf = Classifier()
    return clf.extract(fashion_folder / "train"), clf.extract(fashion_folder / "test")


@pytest.fixture(scope="session")
def stripes(tmp_path_factory) -> Path:
    """Two classes of 24-px images: horizontal and vertical stripes under noise (4 each)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("stripes")
    rng = np.random.default_rng(0)
    for label in ("horizontal", "vertical"):
        (root / label).mkdir()
        for i in range(4):
            bars = (np.arange(24) // 3 % 2 * 200)[:, None].repeat(24, 1)
            arr = bars if label == "horizontal" else bars.T
            arr = np.clip(arr + rng.normal(0, 30, (24, 24)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).convert("RGB").save(root / label / f"{i}.png")
    return root
