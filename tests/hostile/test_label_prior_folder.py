"""A saved multi-label model with the language prior (issue 24), edited and re-signed (an attacker
who knows the format): a per-label probe in a single-label model, a per-class probe in a
multi-label one, a prior that is not the tags' are refused in one line; ``zeroshot --tiles`` takes only the grids it can cut."""
from __future__ import annotations

import shutil

import pytest

from wordsight.cli import main
from wordsight.estimator import Classifier
from wordsight.io.sources import Source, open_source

from .conftest import refused_load, resign


@pytest.fixture(scope="module")
def saved(mosaic_manifests, tmp_path_factory):
    folder = tmp_path_factory.mktemp("label-prior") / "m"
    train = open_source(mosaic_manifests[0])
    Classifier(task="multi-label", fusion="prior", encoders=("efficientnet-lite0",)).fit(
        Source(train.samples[:12], [])).save(folder)
    return folder


@pytest.fixture
def copy(saved, tmp_path):
    shutil.copytree(saved, tmp_path / "m")
    return tmp_path / "m"


def test_the_untouched_copy_loads(copy):
    assert Classifier.load(copy).task_.name == "multi-label"


def test_a_per_class_probe_in_a_multi_label_model_isrefused_load(copy):
    resign(copy, lambda c: c["prior"]["probe"]["info"].pop("targets"))
    refused_load(copy, "a per-class prior probe in a multi-label model")


def test_a_multi_label_probe_in_a_single_label_model_isrefused_load(copy):
    def single(c):
        c["task"] = c["params"]["task"] = "single-label"
        c.pop("task_state", None)

    resign(copy, single)
    refused_load(copy, "the language prior does not fit a single-label model")


def test_a_prior_that_is_not_the_tags_isrefused_load(copy):
    resign(copy / "zero_shot", lambda c: c.pop("tags"), config_name="pipeline.json")
    resign(copy)
    refused_load(copy, "the language prior does not fit a multi-label model")


@pytest.mark.parametrize("tiles", ["1", "5", "two"])
def test_zeroshot_tiles_takes_only_grids_it_can_cut(tiles, mosaic_manifests, capsys):
    with pytest.raises(SystemExit) as info:
        main(["zeroshot", str(mosaic_manifests[1]), "--classes", "Bag,Coat", "--multilabel", "--tiles", tiles])
    assert info.value.code == 2 and "--tiles" in capsys.readouterr().err
