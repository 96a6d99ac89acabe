import numpy as np
import pytest

from wordsight.io.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist, subset_indices


def test_fashion_mnist_standard_splits(fashion_mnist_root):
    x, y = load_fashion_mnist("test", root=fashion_mnist_root)
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


def test_missing_data_set_is_not_downloaded_when_download_is_off(tmp_path, monkeypatch):
    from wordsight.io import datasets

    monkeypatch.delenv("WORDSIGHT_DATA", raising=False)
    monkeypatch.setattr(datasets, "_DEBIAN_DIR", str(tmp_path / "no-debian"))
    with pytest.raises(FileNotFoundError, match="download disabled.*apt-get install dataset-fashion-mnist"):
        datasets.find_fashion_mnist(tmp_path / "empty", download=False)
    assert not (tmp_path / "empty").exists()
