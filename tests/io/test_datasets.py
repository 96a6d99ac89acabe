import numpy as np

from wordsight.io.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist, subset_indices


def test_fashion_mnist_standard_splits():
    x, y = load_fashion_mnist("test")
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [1000] * 10
    assert len(FASHION_MNIST_CLASSES) == 10


def test_subset_is_balanced_and_seeded():
    y = np.repeat(np.arange(10), 50)
    a = subset_indices(y, per_class=5, seed=1)
    assert np.bincount(y[a]).tolist() == [5] * 10
    assert np.array_equal(a, subset_indices(y, per_class=5, seed=1))
    assert not np.array_equal(a, subset_indices(y, per_class=5, seed=2))


def test_image_folder_export(fashion_folder):
    dirs = sorted(p.name for p in (fashion_folder / "train").iterdir())
    assert dirs == sorted(c.replace("/", "-") for c in FASHION_MNIST_CLASSES)
    assert len(list((fashion_folder / "train").rglob("*.png"))) == 60
