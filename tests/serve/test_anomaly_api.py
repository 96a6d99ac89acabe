"""POST /v1/predict for issue 23 on real loopback servers: a detector folder's score, decision and
threshold (equal to ``score_samples``), a classifier's prediction set at ``coverage`` (equal to
``predict_set``) and ``unknown`` at ``reject_rate`` (equal to ``predict(X, reject_rate=...)``)."""
from __future__ import annotations

import httpx
import numpy as np
import pytest

from wordsight.estimator.anomaly import AnomalyDetector


@pytest.fixture(scope="module")
def detector_dir(fashion_folder, tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("served-detector") / "trouser-detector"
    AnomalyDetector().fit(fashion_folder / "train" / "Trouser").save(folder)
    return str(folder)


@pytest.fixture(scope="module")
def detector_server(detector_dir, server):  # after ``server``: the encoders are loaded once
    from wordsight.serve import BackgroundServer, ServeSettings

    with BackgroundServer(ServeSettings(model_dir=detector_dir, warm_up=False)) as s:
        yield s


def _post(url, paths, **data):
    files = [("files", (p.name, p.read_bytes(), "image/png")) for p in paths]
    return httpx.post(url + "/v1/predict", files=files, data=data, timeout=120)


def test_a_detector_answers_score_decision_and_threshold_as_score_samples(detector_server, detector_dir,
                                                                          fashion_folder):
    det = AnomalyDetector.load(detector_dir)
    paths = [sorted((fashion_folder / "test" / c).glob("*.png"))[0] for c in ("Trouser", "Bag", "Sneaker")]
    got = _post(detector_server.url, paths).json()["results"]
    want = det.score_samples(paths)
    assert [r["file"] for r in got] == [p.name for p in paths]
    np.testing.assert_allclose([r["score"] for r in got], want, atol=1e-5)
    assert [r["decision"] for r in got] == ["normal" if s >= det.threshold_ else "abnormal" for s in want]
    assert got[1]["decision"] == "abnormal" and all(r["threshold"] == pytest.approx(det.threshold_) for r in got)
    assert "top_k" not in got[0]
    info = httpx.get(detector_server.url + "/v1/model").json()["model"]
    assert (info["kind"], info["method"], info["classes"]) == ("anomaly", "knn", ["normal", "abnormal"])
    assert info["threshold"] == pytest.approx(det.threshold_)
    r = _post(detector_server.url, paths[:1], coverage="0.9")
    assert r.status_code == 422 and r.json()["error"] == "invalid_coverage"
    assert "anomaly detector" in r.json()["detail"]


def test_prediction_sets_and_unknown_equal_the_estimators(client, model_dir, images, tmp_path):
    from wordsight.estimator import Classifier

    model = Classifier.load(model_dir)
    names = ["cat", "coffee", "rocket"]
    files = [("files", (f"{n}.jpg", images[n], "image/jpeg")) for n in names]
    datas = []
    for n in names:
        (tmp_path / f"{n}.jpg").write_bytes(images[n])
        datas.append(tmp_path / f"{n}.jpg")
    for method in ("lac", "aps"):
        for coverage in (0.5, 0.9):
            got = client.post("/v1/predict", files=files, data={"coverage": str(coverage),
                                                                "set_method": method}).json()["results"]
            assert [r["prediction_set"] for r in got] == model.predict_set(datas, coverage, method)
            assert all(r["coverage"] == coverage and r["set_method"] == method for r in got)
    got = client.post("/v1/predict", files=files, data={"reject_rate": "0.3"}).json()["results"]
    # cosine distances of training images to themselves are ~0: float32 noise of 1e-6 either way
    np.testing.assert_allclose([r["ood_score"] for r in got], model.ood_score(datas), rtol=1e-5, atol=1e-5)
    want = model.predict(datas, reject_rate=0.3)
    assert [r["predicted"] for r in got] == list(want)
    assert [r["unknown"] for r in got] == [w == "unknown" for w in want]
    plain = client.post("/v1/predict", files=files).json()["results"]
    assert all("prediction_set" not in r and "unknown" not in r for r in plain)


@pytest.mark.parametrize("field,value,code", [("coverage", "1.5", "invalid_coverage"),
                                              ("coverage", "0", "invalid_coverage"),
                                              ("reject_rate", "-0.1", "invalid_reject_rate"),
                                              ("set_method", "top", "invalid_set_method")])
def test_bad_set_options_are_one_line_422s(client, images, field, value, code):
    r = client.post("/v1/predict", files=[("files", ("cat.jpg", images["cat"], "image/jpeg"))], data={field: value})
    assert r.status_code == 422 and r.json()["error"] == code
    assert "\n" not in r.json()["detail"]


def test_a_patchcore_detector_answers_its_heatmap(fashion_folder, tmp_path, server):
    import base64
    import io

    from PIL import Image

    from wordsight.serve import BackgroundServer, ServeSettings

    det = AnomalyDetector(method="patchcore", coreset=0.05).fit(fashion_folder / "train" / "Trouser")
    det.save(tmp_path / "pc")
    paths = [sorted((fashion_folder / "test" / c).glob("*.png"))[0] for c in ("Trouser", "Bag")]
    with BackgroundServer(ServeSettings(model_dir=str(tmp_path / "pc"), warm_up=False)) as s:
        got = _post(s.url, paths).json()["results"]
        assert httpx.get(s.url + "/v1/model").json()["model"]["heatmaps"] is True
    np.testing.assert_allclose([r["score"] for r in got], det.score_samples(paths), rtol=1e-5)
    maps = [Image.open(io.BytesIO(base64.b64decode(r["heatmap_png"]))) for r in got]
    assert all(m.size == (160, 160) for m in maps)
    # the bag's map is hotter (brighter in the inferno colours) than the trouser's
    assert np.asarray(maps[1]).mean() > np.asarray(maps[0]).mean()
