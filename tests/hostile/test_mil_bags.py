"""Hostile input for tile bags and the mil head (issue 24): a bad or unreadable file among good ones
in a bag is reported once and the others come back; a saved mil head whose arrays or bag do not
match its rows is refused in one line; rows with another number of tiles are refused."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from wordsight.estimator import Classifier
from wordsight.features.tilebag import extract_bag

from .conftest import refused_load, resign, saved_mil, write_head


def test_a_corrupt_file_and_a_fifo_in_a_bag_are_reported_once_and_the_others_come_back(photo_folder, tmp_path):
    folder = tmp_path / "imgs"
    shutil.copytree(photo_folder / "cat", folder)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    os.mkfifo(folder / "pipe.jpg")
    fs = extract_bag(folder, "tilebag:2,3:efficientnet-lite0", quiet=True)
    assert sorted(p.rsplit("/", 1)[1] for p in fs.paths) == ["0.jpg", "0_flip.jpg"]
    assert fs.embeddings.shape == (2, 13 * 1280)
    bad = sorted((f.path.rsplit("/", 1)[1], f.reason) for f in fs.failures)
    assert [b[0] for b in bad] == ["broken.jpg", "pipe.jpg"]  # once each, not once per tile
    assert all(b[1] and "\n" not in b[1] for b in bad)


@pytest.fixture
def saved(tmp_path):
    return saved_mil(tmp_path / "m", lam=1e-3)


def test_a_saved_instance_weight_of_another_width_is_refused(saved):
    write_head(saved, lambda a: a.update(W=a["W"][:, :3].copy()))
    refused_load(saved, r"field 'W' must be \(2, 5\) for a bag of 4 x 5, not \(2, 3\)")


def test_a_saved_bag_that_does_not_fit_the_rows_is_refused(saved):
    resign(saved, lambda c: c["head"]["info"].update(bag=[3, 9, 5]))
    refused_load(saved, r"field 'bag' .*bag \[3, 9, 5\] \(\[start, instances, width\]\) does not fit rows of 23 features")


def test_a_saved_global_weight_of_another_width_is_refused(saved):
    write_head(saved, lambda a: a.update(V=np.zeros((2, 4))))
    refused_load(saved, r"field 'V' must be \(2, 3\)")


def test_rows_with_another_number_of_tiles_are_refused_in_one_line(saved):
    clf = Classifier.load(saved)
    with pytest.raises(ValueError, match=r"X has 28 features, but Classifier is expecting 23") as info:
        clf.predict_proba(np.zeros((2, 3 + 5 * 5)))
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=r"rows of 28 features, but this mil head reads 23 \(a bag of 4 instances"):
        clf.state_.head.logits(np.zeros((2, 3 + 5 * 5)))
