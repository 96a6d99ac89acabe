"""An ensemble's folder (``fit --search``) is a new input path: every edit re-signed with fresh
checksums (an attacker who knows the format), then loaded; each is refused in one line naming
the folder and the problem, before any member predicts."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

import wordsight
from wordsight.estimator.saved.persistence import ModelFolderError
from wordsight.training.autofit import search_fit

from ..training.test_search import CANDIDATES, make_blocks
from .conftest import refused_load, resign


@pytest.fixture(scope="module")
def ensemble_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ensemble")
    search_fit(make_blocks(), candidates=CANDIDATES[:3], ensemble="stack", max_members=2).model.save(folder)
    return folder


@pytest.fixture
def copy(ensemble_dir, tmp_path):
    dst = tmp_path / "ens"
    shutil.copytree(ensemble_dir, dst)
    return dst


def _refused(folder, match: str) -> str:
    return refused_load(folder, match, load=wordsight.load)


def test_the_untouched_copy_loads(copy):
    assert wordsight.load(copy).kind == "stack"


@pytest.mark.parametrize("name,match", [("../outside", r"leaves the folder"), ("/etc", r"absolute path"),
                                        (".", r"is an ensemble, not a saved Classifier"), (7, r"list of 1..16")])
def test_member_folders_outside_the_folder_or_the_ensemble_itself(copy, name, match):
    resign(copy, lambda c: c.update(members=[c["members"][0], name]))
    _refused(copy, match)


def test_a_member_linked_out_of_the_folder(copy, ensemble_dir):
    shutil.rmtree(copy / "members" / "1")
    os.symlink(ensemble_dir / "members" / "1", copy / "members" / "1")
    _refused(copy, r"link that leads out of the folder")


@pytest.mark.parametrize("weights", [[1.0], [float("nan"), 1.0], [-1.0, 2.0], [0, 0], ["1", 1]])
def test_weights_that_are_not_one_finite_non_negative_number_per_member(copy, weights):
    resign(copy, lambda c: c.update(weights=weights))  # json writes nan as NaN, which Python reads back
    _refused(copy, r"weights")


def test_too_many_members(copy):
    resign(copy, lambda c: c.update(members=c["members"] * 9, weights=[1.0] * 18))
    _refused(copy, r"list of 1..16 folder names")


def test_an_unknown_kind(copy):
    resign(copy, lambda c: c.update(kind="median"))
    _refused(copy, r"field 'kind' must be one of")


def test_a_meta_head_of_the_wrong_shape_or_with_nan(copy):
    from safetensors.numpy import load_file, save_file

    arrays = load_file(str(copy / "meta.safetensors"))
    save_file({"coef": arrays["coef"][:, :-1].copy(), "intercept": arrays["intercept"]}, str(copy / "meta.safetensors"))
    resign(copy)
    _refused(copy, r"meta.safetensors: must hold coef \(3, 6\)")
    arrays["coef"][0, 0] = np.nan
    save_file(arrays, str(copy / "meta.safetensors"))
    resign(copy)
    _refused(copy, r"meta.safetensors")


def test_a_stack_without_its_meta_head(copy):
    (copy / "meta.safetensors").unlink()
    resign(copy, lambda c: c["files"].pop("meta.safetensors"))
    _refused(copy, r"needs meta.safetensors")


def test_a_member_not_covered_by_the_checksums(copy):
    def edit(c):
        for name in [n for n in c["files"] if n.startswith("members/1/")]:
            c["files"].pop(name)

    resign(copy, edit)
    _refused(copy, r"member 'members/1' is not covered by 'files'")


def test_classes_that_differ_from_the_members(copy):
    resign(copy, lambda c: c.update(classes=["x", "y", "z"]))
    _refused(copy, r"classes do not match")


def test_a_config_that_is_not_json(copy):
    (copy / "config.json").write_text(json.dumps({"format": "wordsight-ensemble"})[:-3])
    _refused(copy, r"not valid JSON")


def test_wordsight_load_gives_the_ensemble_a_fitted_model(copy):
    from wordsight.estimator import FittedModel
    from wordsight.estimator.ensemble import Ensemble

    ens = wordsight.load(copy)
    assert type(ens) is Ensemble and isinstance(ens, FittedModel) and len(ens.members) == 2


def test_classifier_load_on_an_ensemble_names_wordsight_load(copy):
    from wordsight.estimator import Classifier
    from wordsight.estimator.ensemble import Ensemble

    with pytest.raises(ModelFolderError, match=r"config.json: the folder holds a wordsight-ensemble, not a wordsight "
                                               r"classifier; load it with wordsight.load\(folder\)") as info:
        Classifier.load(copy)
    assert "\n" not in str(info.value)
    with pytest.raises(ModelFolderError, match=r"holds a wordsight-classifier, not a wordsight ensemble; "
                                               r"load it with wordsight.load"):
        Ensemble.load(copy / "members" / "0")
