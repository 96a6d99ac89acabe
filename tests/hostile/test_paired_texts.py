"""The ``texts`` field of ``POST /v1/predict`` (issue 12, paired text): over-long, wrong count,
not strings, nested, too large, or sent to a model that reads no text. Real servers on loopback."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from wordsight.estimator.heads import LogisticHead

from .conftest import API_KEY, _settings, png

pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def paired_client(paired_manifests, tmp_path_factory):
    import httpx

    from wordsight.estimator import Classifier
    from wordsight.serve import BackgroundServer

    folder = tmp_path_factory.mktemp("paired-model") / "m"
    clf = Classifier(fusion="late", head=LogisticHead(C=1.0)).fit(paired_manifests[0])
    clf.save(folder)
    settings = replace(_settings(folder), warm_up=False)  # the bad requests never reach the model
    with BackgroundServer(settings) as s, \
            httpx.Client(base_url=s.url, timeout=60, headers={"X-API-Key": API_KEY}) as c:
        yield c, clf


def _predict(client, n, texts):
    files = [("files", (f"{i}.png", png(color=(200, 30, 30)), "image/png")) for i in range(n)]
    data = {} if texts is None else {"texts": texts if isinstance(texts, str) else json.dumps(texts)}
    return client.post("/v1/predict", files=files, data=data)


@pytest.mark.parametrize("texts,status,code,words", [
    (["x" * 2001], 413, "text_too_long", "2,001 characters; the limit is 2,000"),
    (["a", "b"], 422, "invalid_texts", "2 texts for 1 images"),
    ([], 422, "invalid_texts", "0 texts for 1 images"),
    ([3], 422, "invalid_texts", "list of strings"),
    ([["nested"]], 422, "invalid_texts", "flat JSON list"),
    ({"0": "a"}, 422, "invalid_texts", "flat JSON list"),
    ("[" * 5000, 422, "invalid_texts", "flat JSON list"),
    ('["a"', 422, "invalid_texts", "not valid JSON"),
])
def test_bad_texts_are_refused_before_any_work(paired_client, texts, status, code, words):
    client, _ = paired_client
    r = _predict(client, 1, texts)
    assert r.status_code == status, r.text
    assert r.json()["error"] == code and words in r.json()["detail"]


def test_the_whole_field_is_bounded(paired_client):
    client, _ = paired_client
    r = _predict(client, 1, json.dumps(["a" * 1000] * 300))  # 300 kB: over the form-field limit
    assert r.status_code in (413, 422), r.text  # the multipart parser or our own bound, never a 500
    assert r.status_code != 500


def test_a_text_at_the_limit_and_null_texts_are_served(paired_client):
    from wordsight.io.sources import Sample

    client, clf = paired_client
    assert client.get("/v1/model").json()["model"]["reads_texts"] is True
    r = _predict(client, 2, ["y" * 2000, None])
    assert r.status_code == 200, r.text
    data = png(color=(200, 30, 30))
    want = clf.predict_proba([Sample("a", data=data, text="y" * 2000), Sample("b", data=data)])
    got = [[{t["class"]: t["probability"] for t in res["top_k"]}[str(c)] for c in clf.classes_]
           for res in r.json()["results"]]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_texts_sent_to_a_model_that_reads_none_are_refused(client):
    r = client.post("/v1/predict", files=[("files", ("a.png", png(), "image/png"))], data={"texts": '["a red bag"]'})
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "texts_not_used" and "fusion 'image'" in r.json()["detail"]
