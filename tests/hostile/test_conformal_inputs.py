"""Bad input to prediction sets and "unknown": coverages out of range, a model folder without
calibration scores, calibration arrays that do not fit the model (re-signed)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from wordsight.cli import main
from wordsight.estimator import Classifier, ModelFolderError

from .conftest import resign


@pytest.mark.parametrize("flag,value", [("--coverage", "1.5"), ("--coverage", "0"), ("--reject-rate", "-0.1")])
def test_rates_out_of_range_are_one_line_errors(model_dir, photo_folder, flag, value, capsys):
    assert main(["predict", str(model_dir), str(photo_folder), flag, value]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "strictly between 0 and 1" in err[0]


def test_evaluate_coverage_out_of_range(model_dir, photo_folder, capsys):
    assert main(["evaluate", str(model_dir), str(photo_folder), "--coverage", "1.5"]) == 1
    assert "--coverage must be strictly between 0 and 1" in capsys.readouterr().err


def test_a_folder_without_calibration_scores_names_itself(model_copy, photo_folder, capsys):
    def drop(config):
        config.pop("calibration")
        config["files"].pop("calibration.safetensors")

    (model_copy / "calibration.safetensors").unlink()
    resign(model_copy, drop)
    assert Classifier.load(model_copy).predict(photo_folder) is not None  # still loads and predicts
    assert main(["predict", str(model_copy), str(photo_folder), "--coverage", "0.9"]) == 1
    err = capsys.readouterr().err
    assert str(model_copy) in err and "no calibration scores" in err


def test_calibration_arrays_that_do_not_fit_are_refused(model_copy):
    from safetensors.numpy import save_file

    save_file({"logits": np.zeros((4, 3), np.float32), "y": np.zeros(4, np.int64)},
              str(model_copy / "calibration.safetensors"))
    resign(model_copy)
    with pytest.raises(ModelFolderError, match="calibration.safetensors: not out-of-fold scores"):
        Classifier.load(model_copy)
    assert json.loads((model_copy / "config.json").read_text())["calibration"]["n"] > 0


def test_a_bank_of_the_wrong_width_is_refused(model_copy):
    from safetensors.numpy import load_file, save_file

    arrays = load_file(str(model_copy / "calibration.safetensors"))
    arrays["bank"] = arrays["bank"][:, :5].copy()
    save_file(arrays, str(model_copy / "calibration.safetensors"))
    resign(model_copy)
    with pytest.raises(ModelFolderError, match="'bank' must be finite training rows"):
        Classifier.load(model_copy)


def test_fit_calibration_out_of_range_is_one_line(photo_folder, tmp_path, capsys):
    assert main(["fit", str(photo_folder), "--out", str(tmp_path / "m"), "--calibration", "1.5"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "calibration" in err[0] and not (tmp_path / "m").exists()


def test_fit_calibration_split_with_a_class_of_one_image(photo_folder, tmp_path, capsys):
    import shutil

    shutil.copytree(photo_folder, tmp_path / "photos")
    (tmp_path / "photos" / "cat" / "0_flip.jpg").unlink()
    assert main(["fit", str(tmp_path / "photos"), "--out", str(tmp_path / "m"), "--calibration", "0.2"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "class 'cat' has 1" in err[0]
    # with calibration='cross' such a fit keeps no scores, and says so when asked for sets:
    # tests/estimator/test_conformal.py::test_one_image_per_class_keeps_no_calibration_and_says_so
