"""The ``data`` and ``models`` verbs, run as the ``wordsight`` command in a subprocess.

``data`` reads Fashion-MNIST's IDX files from ``--root``; the test writes small IDX files of its
own (the real format: big-endian header, then uint8 pixels), so it needs neither the data set nor
the network, and checks every written PNG pixel for pixel.
"""
from __future__ import annotations

import gzip
import struct
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from wordsight.io.datasets import FASHION_MNIST_CLASSES, class_folder_name


def run(*args, env_extra=None):
    import os

    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "wordsight", *args], capture_output=True, text=True, timeout=300,
                          env=env)


def write_idx(folder, prefix, images, labels):
    with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, len(images), 28, 28) + images.tobytes())
    with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 0x801, len(labels)) + labels.astype(np.uint8).tobytes())


@pytest.fixture
def idx_root(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "idx"
    root.mkdir()
    train_y, test_y = np.tile(np.arange(10), 3), np.arange(10)
    train_x = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    test_x = rng.integers(0, 256, (10, 28, 28), dtype=np.uint8)
    write_idx(root, "train", train_x, train_y)
    write_idx(root, "t10k", test_x, test_y)
    return root, (train_x, train_y), (test_x, test_y)


def test_data_verb_writes_every_image_pixel_for_pixel(idx_root, tmp_path):
    root, (train_x, train_y), (test_x, test_y) = idx_root
    out = tmp_path / "out"
    r = run("data", "fashion-mnist", "--out", str(out), "--root", str(root))
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [f"wrote train to {out / 'train'}", f"wrote test to {out / 'test'}"]
    for split, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
        files = sorted((out / split).rglob("*.png"))
        assert len(files) == len(y)
        for f in files:
            i = int(f.stem)
            assert f.parent.name == class_folder_name(FASHION_MNIST_CLASSES[y[i]])
            np.testing.assert_array_equal(np.asarray(Image.open(f)), x[i])


def test_data_verb_per_class_subset_and_one_split(idx_root, tmp_path):
    root, (_, train_y), _ = idx_root
    out = tmp_path / "sub"
    r = run("data", "fashion-mnist", "--out", str(out), "--root", str(root), "--split", "train", "--per-class", "2")
    assert r.returncode == 0, r.stderr
    files = sorted((out / "train").rglob("*.png"))
    assert len(files) == 20 and not (out / "test").exists()
    per_class = {d.name: len(list(d.glob("*.png"))) for d in (out / "train").iterdir()}
    assert per_class == {class_folder_name(c): 2 for c in FASHION_MNIST_CLASSES}


def test_data_verb_without_the_data_set_fails_in_one_line(tmp_path, monkeypatch, capsys):
    """No IDX files anywhere (the Debian folder moved away for this test) and the canonical site
    unreachable (an HTTP proxy on a closed loopback port): one error line, no traceback."""
    import urllib.request

    from wordsight.cli import main
    from wordsight.io import datasets

    monkeypatch.setattr(datasets, "_DEBIAN_DIR", str(tmp_path / "no-debian"))
    # urllib builds its global opener (and reads the proxy variables) once: a fresh one here, and
    # the previous one back afterwards, so that the proxy below stays in this test
    monkeypatch.setattr(urllib.request, "_opener", None)
    monkeypatch.delenv("WORDSIGHT_DATA", raising=False)
    for var in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert main(["data", "fashion-mnist", "--out", str(tmp_path / "o"), "--root", str(tmp_path / "empty")]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wordsight data: error: Fashion-MNIST not found in ")
    assert "download failed" in lines[0] and "apt-get install dataset-fashion-mnist" in lines[0]
    assert not list((tmp_path / "empty").glob("*.gz"))


def test_models_verb_lists_every_registered_model_with_its_facts():
    from wordsight.encoders import get_config, list_models

    r = run("models")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["name", "kind", "dim", "input", "licence", "offline", "weights"]
    rows = {line.split()[0]: line.split() for line in lines[1:] if line.strip() and not line.startswith("prefixes")}
    assert sorted(rows) == sorted(list_models())
    for name, cols in rows.items():
        cfg = get_config(name)
        assert cols[1:4] == [cfg.modality, str(cfg.dim), f"{cfg.input_size}px" if cfg.input_size else "-"], name
    assert rows["efficientnet-lite0"][1:4] == ["image", "1280", "224px"]
    assert rows["minilm"][1:4] == ["text", "384", "-"]
    assert lines[-1] == ("prefixes (weights from the Hugging Face hub or a local folder): caption:<id or folder>, "
                         "clip:<id or folder>, hf:<id or folder>, st:<id or folder>")


def test_models_verb_filters_by_pattern():
    r = run("models", "efficientnet*")
    assert r.returncode == 0
    names = [line.split()[0] for line in r.stdout.splitlines()[1:] if line.strip() and not line.startswith("prefixes")]
    assert names == ["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"]
