"""The multiple-instance tagger through the verbs (issue 24): ``--encoders`` keeps a tile bag's
grids together, ``fit --head mil`` learns the bag's place from the row, ``evaluate`` scores it."""
from __future__ import annotations

import csv
from types import SimpleNamespace

import pytest

import wordsight
from wordsight.cli import main
from wordsight.cli._common import encoders_arg


@pytest.mark.parametrize("given, want", [
    ("efficientnet-lite0,tilebag:2,3:efficientnet-lite0", ["efficientnet-lite0", "tilebag:2,3:efficientnet-lite0"]),
    ("tilebag:2,3,4:efficientnet-lite0, mobilenet-v2", ["tilebag:2,3,4:efficientnet-lite0", "mobilenet-v2"]),
    ("efficientnet-lite0, tiles:2:efficientnet-lite0", ["efficientnet-lite0", "tiles:2:efficientnet-lite0"]),
    (None, ["efficientnet-lite0"]),
])
def test_encoders_keep_a_bags_grids_together(given, want):
    assert encoders_arg(SimpleNamespace(encoders=given)) == want


def test_fit_with_the_mil_head_on_a_tile_bag_and_evaluate(mosaic_manifests, tmp_path, capsys):
    base = mosaic_manifests[0].parent
    rows = list(csv.DictReader(open(mosaic_manifests[0])))[:40]
    with open(tmp_path / "train.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["path", "labels"])
        w.writeheader()
        w.writerows({"path": str(base / r["path"]), "labels": r["labels"]} for r in rows)
    assert main(["fit", str(tmp_path / "train.csv"), "--encoders", "efficientnet-lite0,tilebag:2:efficientnet-lite0",
                 "--head", "mil", "--out", str(tmp_path / "m"), "--quiet"]) == 0
    clf = wordsight.load(tmp_path / "m")
    assert clf.task_.name == "multi-label" and clf.head_name == "mil"
    assert clf.state_.head.info["bag"] == [1280, 4, 1280] and clf.encoder_names[1] == "tilebag:2:efficientnet-lite0"
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "m"), str(mosaic_manifests[1]), "--quiet"]) == 0
    assert "mAP" in capsys.readouterr().out
