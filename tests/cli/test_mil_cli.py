"""The multiple-instance tagger through the verbs (issue 24): ``--encoders`` keeps a tile bag's
grids together, ``fit --head mil`` learns the bag's place from the row, ``evaluate`` scores it."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

import wordsight
from wordsight.cli import main
from wordsight.cli._common import encoders_arg
from wordsight.cli._tagger import MIL_ENCODERS, TILE_ENCODERS, label_set_defaults

from ..conftest import first_mosaics


@pytest.mark.parametrize("given, want", [
    ("efficientnet-lite0,tilebag:2,3:efficientnet-lite0", ["efficientnet-lite0", "tilebag:2,3:efficientnet-lite0"]),
    ("tilebag:2,3,4:efficientnet-lite0, mobilenet-v2", ["tilebag:2,3,4:efficientnet-lite0", "mobilenet-v2"]),
    ("efficientnet-lite0, tiles:2:efficientnet-lite0", ["efficientnet-lite0", "tiles:2:efficientnet-lite0"]),
    (None, ["efficientnet-lite0"]),
])
def test_encoders_keep_a_bags_grids_together(given, want):
    assert encoders_arg(SimpleNamespace(encoders=given)) == want


@pytest.mark.parametrize("head, encoders, fusion, want", [
    (None, None, "image", (MIL_ENCODERS, "mil")),  # the default: the mil head over a 2x2 tile bag
    (None, None, "prior", (TILE_ENCODERS, "logistic")),  # the prior's per-label probe is a logistic head
    (None, None, "concat", (TILE_ENCODERS, "logistic")),
    ("mil", None, "image", (MIL_ENCODERS, "mil")),  # --head mil alone reads the image and its 2x2 tiles
    (None, "efficientnet-lite0,tilebag:2:efficientnet-lite0", "image", (MIL_ENCODERS, "mil")),
    (None, "efficientnet-lite0,tilebag:2:efficientnet-lite0", "prior", (MIL_ENCODERS, "logistic")),
    ("svm", None, "image", (TILE_ENCODERS, "svm")),
])
def test_what_a_label_set_fit_gets_where_the_options_leave_it_open(head, encoders, fusion, want):
    from wordsight.cli.fit import classifier_from_args

    args = SimpleNamespace(head=head, encoders=encoders, C=None, class_weight=None, seed=0, fusion=fusion,
                           text_model="minilm", augment=0, tta=0, no_cache=False, cache_dir=None, batch_size=None, quiet=True,
                           calibration=None, precision="auto", text_weight=1.0, paired_text_weight=1.0,
                           prior_weight="auto", prior_view="auto", class_descriptions=None)
    clf = classifier_from_args(args)
    label_set_defaults(clf, args, fusion)
    assert (tuple(clf.encoder_names), clf.head_name) == want


@pytest.mark.parametrize("head, hidden, want", [("mil", 1024, 1024), ("mlp", 64, (64,)), ("mil", None, 0)])
def test_hidden_sets_the_mil_and_mlp_heads_hidden_layer(head, hidden, want):
    from wordsight.cli.fit import classifier_from_args

    args = SimpleNamespace(head=head, hidden=hidden, encoders=None, C=None, class_weight=None, seed=0, fusion="image",
                           text_model="minilm", augment=0, tta=0, no_cache=False, cache_dir=None, batch_size=None,
                           quiet=True, calibration=None, precision="auto", text_weight=1.0, paired_text_weight=1.0,
                           prior_weight="auto", prior_view="auto", class_descriptions=None)
    assert classifier_from_args(args).head.hidden == want
    with pytest.raises(ValueError, match="--hidden sets the hidden layer of --head mlp or mil, not of svm"):
        classifier_from_args(SimpleNamespace(**{**vars(args), "head": "svm", "hidden": 8}))


def test_fit_with_the_mil_head_on_a_tile_bag_and_evaluate(mosaic_manifests, tmp_path, capsys):
    first_mosaics(mosaic_manifests[0], 40, tmp_path / "train.csv")
    assert main(["fit", str(tmp_path / "train.csv"), "--encoders", "efficientnet-lite0,tilebag:2:efficientnet-lite0",
                 "--fusion", "image", "--out", str(tmp_path / "m"), "--quiet"]) == 0  # a tile bag, no --head: mil
    clf = wordsight.load(tmp_path / "m")
    assert clf.task_.name == "multi-label" and clf.head_name == "mil"
    assert clf.state_.head.info["bag"] == [1280, 4, 1280] and clf.encoder_names[1] == "tilebag:2:efficientnet-lite0"
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "m"), str(mosaic_manifests[1]), "--quiet"]) == 0
    assert "mAP" in capsys.readouterr().out
