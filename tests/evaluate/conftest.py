"""Features of the small Fashion-MNIST folder, extracted once per session and shared."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def fashion_blocks(fashion_folder):
    """(train, test) FeatureBlocks of the default encoder: 60 train and 40 test images."""
    from wordsight.estimator import Classifier

    clf = Classifier()
    return clf.extract(fashion_folder / "train"), clf.extract(fashion_folder / "test")
