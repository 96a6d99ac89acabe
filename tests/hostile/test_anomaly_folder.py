"""Hostile inputs of the anomaly detector (issue 23): its folder edited or damaged, too few normal
images, a corrupt file among them, a --normal that names no test label."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from safetensors.numpy import save_file

import wordsight
from wordsight.cli import main
from wordsight.estimator.anomaly import AnomalyDetector
from wordsight.storage import ModelFolderError

from .conftest import resign


@pytest.fixture(scope="module")
def det_dir(fashion_folder, tmp_path_factory):
    folder = tmp_path_factory.mktemp("det") / "det"
    AnomalyDetector().fit(fashion_folder / "train" / "Sneaker").save(folder)
    return folder


@pytest.fixture
def det_copy(det_dir, tmp_path):
    return shutil.copytree(det_dir, tmp_path / "copy")


def test_a_changed_byte_in_the_bank_is_refused(det_copy):
    p = det_copy / "scorer.safetensors"
    data = bytearray(p.read_bytes())
    data[-1] ^= 1
    p.write_bytes(bytes(data))
    with pytest.raises(ModelFolderError, match=r"scorer.safetensors: checksum mismatch"):
        wordsight.load(det_copy)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.update(method="isolation-forest"), r"field 'method' must be one of \['knn', 'mahalanobis', 'patchcore', 'words'\]"),
    (lambda c: c.update(k=0), r"field 'k' must be an integer >= 1"),
    (lambda c: c.update(threshold=float("nan")), r"field 'threshold' must be a finite number"),
    (lambda c: c.update(n_train=5), r"array 'bank' has shape \(6, \d+\), expected \(5, \d+\)"),
    (lambda c: c.update(method="mahalanobis"), r"must hold exactly \['mean', 'precision'\], found \['bank'\]"),
    (lambda c: c.update(precisions={"efficientnet-lite0": "fp8"}), r"field 'precisions' must map each encoder to one of fp32"),
    (lambda c: c.update(precisions={"mobilenetv2": "fp32"}), r"field 'precisions' must map each encoder"),
    (lambda c: c.update(precisions="bf16"), r"field 'precisions' must map each encoder"),
])
def test_resigned_edits_that_do_not_fit_are_refused(det_copy, edit, message):
    resign(det_copy, edit)
    with pytest.raises(ModelFolderError, match=message):
        AnomalyDetector.load(det_copy)


def test_a_resigned_bank_with_nan_is_refused(det_copy):
    bank = AnomalyDetector.load(det_copy).scorer_.bank.copy()
    bank[0, 0] = np.nan
    save_file({"bank": bank}, str(det_copy / "scorer.safetensors"))
    resign(det_copy)
    with pytest.raises(ModelFolderError, match=r"array 'bank' holds non-finite values"):
        wordsight.load(det_copy)


def test_one_normal_image_is_one_line_not_a_traceback(fashion_folder, tmp_path, capsys):
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(next((fashion_folder / "train" / "Bag").glob("*.png")), one)
    assert main(["fit", str(one), "--task", "anomaly", "--out", str(tmp_path / "d"), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "at least k+1 = 3 readable normal images are needed in" in err[0] and "got 1" in err[0]
    assert main(["fit", str(one), "--task", "anomaly", "--search", "quick", "--out", str(tmp_path / "d"), "--quiet"]) == 1
    assert "--search and --finetune train classifiers" in capsys.readouterr().err


def test_a_corrupt_file_among_the_normal_images_is_skipped_and_listed(fashion_folder, tmp_path, capsys):
    normal = shutil.copytree(fashion_folder / "train" / "Bag", tmp_path / "bags")
    (normal / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert main(["fit", str(normal), "--task", "anomaly", "--out", str(tmp_path / "d"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "1 file(s) failed and were skipped" in err and "broken.png" in err
    assert wordsight.load(tmp_path / "d").n_train_ == 6


def test_normal_naming_no_test_label_is_one_clear_error(det_dir, fashion_folder, capsys):
    assert main(["evaluate", str(det_dir), str(fashion_folder / "test"), "--normal", "Sneakers", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "--normal Sneakers names no label of the test images" in err and "Sneaker" in err
    assert main(["evaluate", str(det_dir), str(fashion_folder / "test"), "--quiet"]) == 1
    assert "name the normal label(s) of the test images with --normal" in capsys.readouterr().err


def test_normal_images_of_different_sizes_are_pooled_alike(photo_folder):
    from PIL import Image

    sizes = {Image.open(p).size for p in photo_folder.rglob("*.jpg")}
    assert len(sizes) > 1  # photos of several sizes, all normal: pooled features have one length
    det = AnomalyDetector().fit(photo_folder)
    assert det.n_train_ == 8 and np.isfinite(det.score_samples(photo_folder)).all()


def test_predict_lists_a_corrupt_image_and_refuses_an_unknown_output_suffix(det_dir, fashion_folder, tmp_path, capsys):
    good = next((fashion_folder / "test" / "Bag").glob("*.png"))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "scores.csv"
    assert main(["predict", str(det_dir), str(good), str(bad), "--out", str(out), "--quiet"]) == 0
    assert out.read_text().splitlines()[0] == "path,score,decision,threshold" and len(out.read_text().splitlines()) == 2
    assert "bad.png" in capsys.readouterr().err
    assert main(["predict", str(det_dir), str(good), "--out", str(tmp_path / "s.txt"), "--quiet"]) == 1
    assert "s.txt: output must end in .json, .jsonl, .csv, .parquet" in capsys.readouterr().err
    (tmp_path / "taken.csv").mkdir()  # a folder where the file would go: refused before any work, left alone
    assert main(["predict", str(det_dir), str(good), "--out", str(tmp_path / "taken.csv"), "--quiet"]) == 1
    assert "taken.csv: exists and is a folder" in capsys.readouterr().err and (tmp_path / "taken.csv").is_dir()


def test_detector_scores_go_through_the_record_pieces(det_dir, fashion_folder, tmp_path, monkeypatch):
    """Parquet as for predictions; a CSV path cell that a spreadsheet would run is written as text
    while a score stays a number; CSV, Parquet and JSON hold the same rows."""
    import csv
    import json

    import pyarrow.parquet as pq

    monkeypatch.chdir(tmp_path)
    shutil.copy(next((fashion_folder / "test" / "Bag").glob("*.png")), tmp_path / "=SUM(1).png")
    outs = {suffix: tmp_path / f"s{suffix}" for suffix in (".csv", ".parquet", ".json")}
    for out in outs.values():
        assert main(["predict", str(det_dir), "=SUM(1).png", "--out", str(out), "--quiet"]) == 0
    [row] = json.loads(outs[".json"].read_text())
    assert row["path"] == "=SUM(1).png" and row["decision"] in ("normal", "abnormal")
    with open(outs[".csv"], newline="") as f:
        [cells] = list(csv.DictReader(f))
    assert cells["path"] == "'=SUM(1).png" and float(cells["score"]) == row["score"]
    assert float(cells["threshold"]) == row["threshold"] and cells["decision"] == row["decision"]
    assert pq.read_table(outs[".parquet"]).to_pylist() == [row]
    assert not list(tmp_path.glob(".*.part"))  # written whole: no temporary file left

