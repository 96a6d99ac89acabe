"""Hostile inputs of the PatchCore and words detectors (issue 23): normal images of two sizes with a
corrupt file among them, one normal image, a damaged or edited patch bank, a bad class name."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from wordsight.cli import main
from wordsight.estimator.anomaly import AnomalyDetector
from wordsight.storage import ModelFolderError

from .conftest import resign


@pytest.fixture(scope="module")
def mixed_normal(photo_folder, fashion_folder, tmp_path_factory):
    """Photos (512-px JPEGs), 28-px PNGs and a corrupt file, all 'normal'."""
    root = tmp_path_factory.mktemp("mixed-normal")
    for p in sorted(photo_folder.rglob("*.jpg"))[:3] + sorted((fashion_folder / "train" / "Bag").glob("*.png"))[:3]:
        shutil.copy(p, root / f"{p.parent.name}-{p.name}")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


@pytest.fixture(scope="module")
def pc_dir(mixed_normal, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pc-hostile") / "det"
    det = AnomalyDetector(method="patchcore", coreset=0.05).fit(mixed_normal)
    assert [str(f.path).endswith("broken.png") for f in det.fit_failures_] == [True]
    det.save(folder)
    return folder


def test_two_sizes_and_a_corrupt_file_fit_and_score(pc_dir, mixed_normal):
    det = AnomalyDetector.load(pc_dir)
    images = sorted(mixed_normal.iterdir())
    s = det.score_samples(images)
    broken = [p.name == "broken.png" for p in images]
    assert np.isnan(s[broken]).all() and np.isfinite(s[~np.array(broken)]).all()
    F = det.featurize(images)
    assert det.heatmaps_featurized(F).shape == (6, 20, 20)  # one grid for every size


def test_one_normal_image_is_one_line(fashion_folder, tmp_path, capsys):
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(next((fashion_folder / "train" / "Bag").glob("*.png")), one)
    assert main(["fit", str(one), "--task", "anomaly", "--method", "patchcore", "--out", str(tmp_path / "d"),
                 "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "readable normal images are needed" in err[0] and "got 1" in err[0]


@pytest.mark.parametrize("edit,message", [
    (lambda c: c.update(bank_size=c["bank_size"] + 1), r"array 'bank' has shape \(\d+, 152\), expected"),
    (lambda c: c.update(n_features=401), "must be a multiple of 400 patches"),
    (lambda c: c.update(bank_size=0), "field 'bank_size' must be an integer >= 1"),
    (lambda c: c.update(class_name="x" * 300, text_weight=0.1), "class_name must be a non-empty line"),
    (lambda c: c.update(class_name="bag", text_weight=0.1, image_ref=[0.0, 0.0], word_ref=[0.0, 1.0]),
     r"field 'image_ref' must be \[median, scale > 0\]"),
    (lambda c: c.update(class_name="bag", text_weight=2.0), "field 'text_weight' must be a number in"),
])
def test_edited_patchcore_and_words_fields_are_refused(pc_dir, tmp_path, edit, message):
    copy = shutil.copytree(pc_dir, tmp_path / "copy")
    resign(copy, edit)
    with pytest.raises(ModelFolderError, match=message):
        AnomalyDetector.load(copy)


def test_a_words_folder_with_arrays_or_without_a_name_is_refused(tmp_path):
    AnomalyDetector(method="words", class_name="bag").fit(None).save(tmp_path / "w")
    copy = shutil.copytree(tmp_path / "w", tmp_path / "w2")
    resign(copy, lambda c: c.update(class_name=None))
    with pytest.raises(ModelFolderError, match="method 'words' needs field 'class_name'"):
        AnomalyDetector.load(copy)


def test_a_bad_class_name_on_the_command_line_is_one_line(tmp_path, capsys):
    assert main(["fit", "--task", "anomaly", "--class-name", "a" * 201, "--out", str(tmp_path / "w"), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "class_name must be a non-empty line of at most 200 characters" in err[0]


def test_a_tiny_grey_image_and_a_photo_get_pictures_of_their_input_size(pc_dir, mixed_normal):
    det = AnomalyDetector.load(pc_dir)
    images = [p for p in sorted(mixed_normal.iterdir()) if p.name != "broken.png"]
    _, pictures = det.featurize_patches(images, views=True)
    sizes = {Image.open(p).size[0] <= 56: pic.shape for p, pic in zip(images, pictures)}
    assert sizes == {True: (160, 160, 3), False: (224, 224, 3)}
