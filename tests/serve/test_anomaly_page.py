"""The page shows what POST /v1/predict answers for issue 23, in headless Chromium: a detector's
decision and score beside its threshold; a classifier's prediction set and "unknown"."""
from __future__ import annotations

import httpx
import pytest

from wordsight.estimator.anomaly import AnomalyDetector

from .conftest import open_page

pytestmark = pytest.mark.slow




@pytest.fixture(scope="module")
def detector_server(fashion_folder, tmp_path_factory, server):
    from wordsight.serve import BackgroundServer, ServeSettings

    folder = tmp_path_factory.mktemp("page-detector") / "trouser-detector"
    AnomalyDetector().fit(fashion_folder / "train" / "Trouser").save(folder)
    with BackgroundServer(ServeSettings(model_dir=str(folder), warm_up=False)) as s:
        yield s


def _api(url, path, **data) -> dict:
    return httpx.post(url + "/v1/predict", timeout=120, data=data,
                      files=[("files", (path.name, path.read_bytes(), "image/png"))]).json()["results"][0]


def test_a_detector_page_shows_the_decision_and_the_score(browser, detector_server, fashion_folder):
    page, errors = open_page(browser, detector_server.url + "/")
    page.wait_for_function("document.getElementById('model-info').textContent.includes('anomaly detector (knn')")
    assert page.locator("#sets-box").is_hidden()  # a detector's threshold was set at fit
    for cls in ("Bag", "Trouser"):
        image = sorted((fashion_folder / "test" / cls).glob("*.png"))[0]
        want = _api(detector_server.url, image)
        page.set_input_files("#file-input", str(image))
        page.wait_for_function("(want) => document.getElementById('top-class').textContent === want",
                               arg=want["decision"], timeout=60_000)
        assert page.inner_text("#anomaly") == (f"anomaly score {want['score']:.4f} (threshold "
                                               f"{want['threshold']:.4f}; higher is more normal)")
        assert page.locator("#bars li").count() == 0
    assert want["decision"] == "normal"  # the last, a trouser, is normal; a bag is not (tested in the API test)
    assert not errors
    page.close()


def test_a_classifier_page_shows_the_set_and_unknown(browser, server, images, tmp_path):
    page, errors = open_page(browser, server.url + "/")
    page.wait_for_function("document.getElementById('model-info').textContent.includes('photos-model')")
    assert page.locator("#set-line").is_hidden()
    page.locator("#sets-box summary").click()
    page.fill("#coverage", "0.9")
    page.fill("#reject-rate", "0.3")
    image = tmp_path / "rocket.jpg"
    image.write_bytes(images["rocket"])
    page.set_input_files("#file-input", str(image))
    page.wait_for_selector("#set-line:not([hidden])", timeout=60_000)
    want = _api(server.url, image, coverage="0.9", reject_rate="0.3")
    assert page.inner_text("#set-line") == f"prediction set at 90% coverage: {{{', '.join(want['prediction_set'])}}}"
    assert page.inner_text("#top-class") == want["predicted"]
    assert page.inner_text("#unknown-line") == (
        "unknown: less like the training classes than 70% of the training images" if want["unknown"]
        else "known: like the training classes")
    assert not errors
    page.close()


def test_a_patchcore_detector_page_shows_the_heatmap(browser, fashion_folder, tmp_path, server):
    from wordsight.serve import BackgroundServer, ServeSettings

    AnomalyDetector(method="patchcore", coreset=0.05).fit(fashion_folder / "train" / "Trouser").save(tmp_path / "pc")
    image = sorted((fashion_folder / "test" / "Bag").glob("*.png"))[0]
    with BackgroundServer(ServeSettings(model_dir=str(tmp_path / "pc"), warm_up=False)) as s:
        page = browser.new_page()
        page.goto(s.url + "/")
        page.wait_for_function("document.getElementById('model-info').textContent.includes('(patchcore')")
        page.set_input_files("#file-input", str(image))
        page.wait_for_selector("#heatmap-box:not([hidden])", timeout=60_000)
        page.wait_for_function("document.getElementById('heatmap').naturalWidth === 160")
        want = _api(s.url, image)
        assert page.inner_text("#top-class") == want["decision"] == "abnormal"
        assert page.get_attribute("#heatmap", "src") == "data:image/png;base64," + want["heatmap_png"]
        page.close()
