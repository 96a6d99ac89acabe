"""A zero-shot-only server (no trained model) behind an API key."""
from __future__ import annotations

import json

import httpx
import numpy as np
import pytest


def up(*pairs):
    return [("files", (name, data, "application/octet-stream")) for name, data in pairs]


def test_api_key_is_required_by_header(zs_server, api_key):
    url = zs_server.url
    r = httpx.get(url + "/v1/model")
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    assert "X-API-Key" in r.json()["detail"]
    assert httpx.get(url + "/v1/model", headers={"X-API-Key": "wrong"}).status_code == 401
    assert httpx.get(url + "/metrics").status_code == 401
    assert httpx.get(url + "/v1/model", headers={"X-API-Key": api_key}).status_code == 200
    assert httpx.get(url + "/v1/model", headers={"Authorization": f"Bearer {api_key}"}).status_code == 200
    # The page, its files, the docs and the health probe stay open.
    for path in ("/", "/static/app.js", "/healthz", "/docs"):
        assert httpx.get(url + path).status_code == 200, path


def test_zero_shot_only_server_has_no_trained_model(zs_client, images):
    info = zs_client.get("/v1/model").json()
    assert info["model"] is None
    assert info["zero_shot"]["available"] and info["zero_shot"]["encoder"] == "efficientnet-lite0"
    r = zs_client.post("/v1/predict", files=up(("cat.jpg", images["cat"])))
    assert r.status_code == 404 and r.json()["error"] == "no_model"


def zero_shot_by_hand(datas, classes, view):
    """The zero-shot pipeline's numbers computed from its building blocks: the view at full input
    size, ConSE (top-10 concepts) and the linear map into MiniLM's space, cosine to the class names
    times 10, log-softmax per way, averaged, renormalised; no centring."""
    from wordsight.features import extract_features
    from wordsight.features.views import get_view
    from wordsight.io.sources import Sample
    from wordsight.text._text import embed_texts
    from wordsight.text.concepts import default_bank
    from wordsight.zeroshot.image_text import text_space_map

    fn, key = get_view(view)
    fs = extract_features([Sample(f"img{i}", data=d) for i, d in enumerate(datas)], "efficientnet-lite0",
                          cache=False, quiet=True, view=fn, view_key=key, small_input=None)
    z = fs.arrays["logits"].astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    keep = np.argsort(-p, 1)[:, :10]
    w = np.zeros_like(p)
    np.put_along_axis(w, keep, np.take_along_axis(p, keep, 1), 1)
    w /= w.sum(1, keepdims=True)
    conse = w @ default_bank("minilm").embeddings
    linear = text_space_map("efficientnet-lite0", "minilm").transform(fs.arrays["embedding"])
    E = embed_texts(classes, "minilm").astype(np.float64)
    logps = []
    for v in (conse, linear):
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
        s = 10.0 * v @ (E / np.linalg.norm(E, axis=1, keepdims=True)).T
        logps.append(s - s.max(1, keepdims=True) - np.log(np.exp(s - s.max(1, keepdims=True)).sum(1, keepdims=True)))
    m = (logps[0] + logps[1]) / 2
    P = np.exp(m - m.max(1, keepdims=True))
    return P / P.sum(1, keepdims=True)


def test_zero_shot_answers_what_the_pipeline_computes(zs_client, images):
    classes = ["cat", "rocket", "cup of coffee"]
    r = zs_client.post("/v1/zeroshot", files=up(("chelsea.jpg", images["cat"]), ("rocket.jpg", images["rocket"])),
                       data={"classes": "cat\nrocket\ncup of coffee"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["classes"] == classes and body["method"] == "names" and body["view"] == "plain"
    assert [x["predicted"] for x in body["results"]] == ["cat", "rocket"]
    assert body["results"][0]["description"] == "no ImageNet concept fits well"  # tabby cat 0.39 < 0.43
    expected = zero_shot_by_hand([images["cat"], images["rocket"]], classes, "plain")
    for row, res in zip(expected, body["results"]):
        got = {x["class"]: x["probability"] for x in res["top_k"]}
        np.testing.assert_allclose([got[c] for c in classes], row, rtol=1e-4, atol=1e-6)


def test_zero_shot_with_descriptions_and_a_json_class_list(zs_client, images):
    desc = {"mug": "a cup of hot coffee on a saucer", "spacecraft": "a rocket on its launch pad"}
    r = zs_client.post("/v1/zeroshot", files=up(("coffee.jpg", images["coffee"])),
                       data={"classes": json.dumps(["mug", "spacecraft", "tabby cat"]),
                             "descriptions": json.dumps(desc), "top_k": "2"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["method"] == "descriptions"
    assert body["results"][0]["predicted"] == "mug"
    assert len(body["results"][0]["top_k"]) == 2


@pytest.mark.parametrize("data,code", [
    ({"classes": "cat"}, "invalid_classes"),
    ({"classes": "cat, cat, dog"}, "invalid_classes"),
    ({"classes": "[1, 2]"}, "invalid_classes"),
    ({"classes": "cat, dog", "descriptions": "{not json"}, "invalid_descriptions"),
    ({"classes": "cat, dog", "descriptions": json.dumps({"horse": "an animal"})}, "invalid_descriptions"),
    ({"classes": "cat, dog", "method": "tarot"}, "invalid_method"),
])
def test_bad_class_lists_are_refused_with_reasons(zs_client, images, data, code):
    r = zs_client.post("/v1/zeroshot", files=up(("cat.jpg", images["cat"])), data=data)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == code


def test_zero_shot_needs_classes_and_valid_images(zs_client, images):
    r = zs_client.post("/v1/zeroshot", files=up(("cat.jpg", images["cat"])))
    assert r.status_code == 422 and "classes" in r.json()["detail"]
    r = zs_client.post("/v1/zeroshot", files=up(("x.gif", b"GIF89a-but-not-really")), data={"classes": "a, b"})
    assert r.status_code == 415 and r.json() == {
        "error": "not_an_image", "file": "x.gif",
        "detail": "x.gif: not a recognised image format (expected JPEG, PNG, WebP, GIF, BMP, TIFF, "
                  "a video (MP4, WebM, MKV, MOV, AVI) or DICOM)"}
