"""Hostile input for explanations through a tile bag (follow-up of issue 24): an image too small to
cut into the bag's tiles is refused in one line naming it (the API, the CLI among good images, the
server), for predictions as for explanations; the tile map asked of a model without a tile bag,
or of one whose head does not pool tiles, is refused in one line."""
from __future__ import annotations

import io
import json

import httpx
import numpy as np
import pytest
from PIL import Image

from wordsight.cli import main
from wordsight.estimator import Classifier
from wordsight.explain import explain
from wordsight.io.images import ImageError
from wordsight.io.sources import open_source

from ..conftest import first_mosaics

ENC = "efficientnet-lite0"


@pytest.fixture(scope="module")
def bag_model(mil_tagger):
    return mil_tagger[1]


@pytest.fixture
def narrow(tmp_path):
    path = tmp_path / "narrow.png"  # 1 px wide: its 2x2 split has an empty column
    Image.fromarray(np.full((40, 1, 3), 200, np.uint8)).save(path)
    return path


def test_an_image_too_small_for_the_tiles_is_refused_in_one_line(bag_model, narrow, mosaic_manifests, tmp_path,
                                                                 capsys):
    clf = Classifier.load(bag_model)
    for method in ("tiles", "gradcam", "lime"):
        with pytest.raises(ImageError, match=r"narrow.png: 1x40 px is too small to cut into 2x2 tiles$"):
            explain(clf, narrow, method=method, lime_samples=8)
    F = clf.featurize([narrow])  # predictions refuse it alike (no crash on a bag of no rows)
    assert [f.reason for f in F.failures] == ["1x40 px is too small to cut into 2x2 tiles"]
    good = open_source(mosaic_manifests[1]).paths[0]
    assert main(["explain", str(bag_model), str(narrow), good, "--method", "tiles", "--out", str(tmp_path / "x")]) == 0
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if "narrow.png" in line] == [
        f"  {narrow}: 1x40 px is too small to cut into 2x2 tiles"]
    assert len(json.loads((tmp_path / "x" / "evidence.json").read_text())) == 1


def test_the_server_refuses_it_and_the_tile_map_of_a_model_without_a_bag(bag_model, narrow, mosaic_manifests,
                                                                         tmp_path):
    from wordsight.serve import BackgroundServer, ServeSettings

    good = open_source(mosaic_manifests[1]).paths[0]
    with BackgroundServer(ServeSettings(model_dir=str(bag_model), warm_up=False)) as server:
        r = httpx.post(server.url + "/v1/explain", files=[("files", ("narrow.png", narrow.read_bytes(), "image/png"))],
                       data={"method": "tiles"}, timeout=300)
        assert r.status_code == 422 and r.json()["file"] == "narrow.png", r.text
        detail = r.json()["detail"]
        assert detail.startswith("narrow.png: ") and detail.endswith(": 1x40 px is too small to cut into 2x2 tiles")
        r = httpx.post(server.url + "/v1/explain", files=[("files", ("m.png", open(good, "rb").read(), "image/png"))],
                       data={"method": "tiles"}, timeout=300)
        assert r.status_code == 200, r.text
        ev = r.json()["results"][0]["evidence"]
        assert len(ev["tiles"]["tiles"]) == 4
        want = Classifier.load(bag_model).predict_proba([good])[0]
        assert ev["probability"] == pytest.approx(want.max(), abs=1e-5)
    first_mosaics(mosaic_manifests[0], 16, tmp_path / "train.csv")
    plain = Classifier(encoders=(ENC,), task="multi-label").fit(tmp_path / "train.csv")
    with pytest.raises(ValueError, match=r"^method 'tiles' explains a model whose encoders include a tile bag"):
        explain(plain, Image.open(io.BytesIO(open(good, "rb").read())), method="tiles")
