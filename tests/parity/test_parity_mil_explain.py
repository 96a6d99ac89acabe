"""One computation for explanations through a tile bag and the mil head (follow-up of issue 24):
``wordsight explain``'s JSON (the tile map and Grad-CAM inside each tile), the tile terms it
reports and ``POST /v1/explain`` give what ``predict_proba`` computes, within 1e-5 (1e-9 for the
terms, which are the head's own numbers), on 28-px-tile mosaics and on photos (one of them
draft-decoded)."""
from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
from PIL import Image
from scipy.special import expit

from wordsight.cli import main
from wordsight.estimator import Classifier
from wordsight.io.sources import open_source

ENC = "efficientnet-lite0"
ATOL = 1e-5


@pytest.fixture(scope="module")
def tagger(mil_tagger):
    return mil_tagger[1]


@pytest.fixture(scope="module")
def tests(mosaic_manifests, photo_folder, tmp_path_factory):
    big = tmp_path_factory.mktemp("parity-photos") / "coffee-768.jpg"
    with Image.open(photo_folder / "coffee" / "0.jpg") as im:
        im.resize((768, 512)).save(big, quality=90)  # decoded at half size (JPEG draft)
    return open_source(mosaic_manifests[1]).paths[:4] + [str(photo_folder / "cat" / "0.jpg"), str(big)]


def test_explain_and_the_server_report_predict_proba_through_the_tiles(tagger, tests, tmp_path):
    from wordsight.serve import BackgroundServer, ServeSettings

    clf = Classifier.load(tagger)
    want = clf.predict_proba(tests)
    classes = [str(c) for c in clf.classes_]
    for method in ("tiles", "gradcam"):
        assert main(["explain", str(tagger), *tests, "--method", method, "--out", str(tmp_path / method)]) == 0
        records = json.loads((tmp_path / method / "evidence.json").read_text())
        assert [r["files"]["overlay"].endswith(f".{method}.png") for r in records] == [True] * len(tests)
        for r, p in zip(records, want):
            j = classes.index(r["target"])
            assert j == int(np.argmax(p))
            np.testing.assert_allclose(r["probability"], p[j], atol=ATOL)
            np.testing.assert_allclose([q for _, q in r["top_k"]], np.sort(p)[::-1][:5], atol=ATOL)
            t = r["tiles"]
            np.testing.assert_allclose(expit(t["logit"]), p[j], atol=1e-9)
            np.testing.assert_allclose(t["pooled"] + t["global"] + t["bias"], t["logit"], atol=1e-12)
    with BackgroundServer(ServeSettings(model_dir=str(tagger), warm_up=False)) as server:
        for method in ("tiles", "gradcam"):
            files = [("files", (p.rsplit("/", 1)[1], open(p, "rb").read(), "application/octet-stream"))
                     for p in tests[3:5]]
            r = httpx.post(server.url + "/v1/explain", files=files, data={"method": method}, timeout=300)
            assert r.status_code == 200, r.text
            for res, p in zip(r.json()["results"], want[3:5]):
                np.testing.assert_allclose(res["evidence"]["probability"], p.max(), atol=ATOL)
                assert res["evidence"]["method_facts"]["map"].startswith("tiles" if method == "tiles" else "gradcam")
