"""The web page at ``/``, end to end in headless Chromium (Debian's package, driven by Playwright)."""
from __future__ import annotations

import base64
import json
import os
import shutil

import httpx
import numpy as np
import pytest

from wordsight.estimator.heads import LogisticHead

from .conftest import open_page

ACCENT = np.array([0x2F, 0x6F, 0xD8])  # the bars' colour (static/style.css --accent)

pytestmark = pytest.mark.slow




def explains() -> bool:
    try:
        import wordsight.explain  # noqa: F401
    except ImportError:
        return False
    return True


def bar_pixels(png_path, box) -> int:
    """Pixels of the bars' colour inside ``box`` of a screenshot."""
    from PIL import Image

    img = np.asarray(Image.open(png_path).convert("RGB")).astype(int)
    x, y, w, h = (int(round(v)) for v in (box["x"], box["y"], box["width"], box["height"]))
    crop = img[y : y + h, x : x + w]
    return int((np.abs(crop - ACCENT).sum(-1) < 30).sum())


def save_for_review(path):
    """Keep a copy when $WORDSIGHT_SCREENSHOT_DIR is set, for a person to look at."""
    out = os.environ.get("WORDSIGHT_SCREENSHOT_DIR")
    if out:
        os.makedirs(out, exist_ok=True)
        shutil.copy(path, os.path.join(out, os.path.basename(path)))


def test_choose_an_image_and_see_the_top_k_bars(browser, server, images, tmp_path):
    page, errors = open_page(browser, server.url + "/")
    page.wait_for_function("document.getElementById('model-info').textContent.includes('photos-model')")
    (tmp_path / "chelsea.jpg").write_bytes(images["cat"])
    page.set_input_files("#file-input", str(tmp_path / "chelsea.jpg"))
    page.wait_for_selector("#results:not([hidden])", timeout=60_000)
    assert page.inner_text("#top-class") == "cat"
    names = page.locator("#bars .name").all_inner_texts()
    assert names[0] == "cat" and sorted(names) == ["astronaut", "cat", "coffee", "rocket"]
    # The page shows the words /v1/predict answers: the class first, then that no ImageNet
    # concept clears efficientnet-lite0's measured threshold (tabby cat 0.39 < 0.43).
    api = httpx.post(server.url + "/v1/predict", timeout=120,
                     files=[("files", ("chelsea.jpg", images["cat"], "image/jpeg"))]).json()["results"][0]
    assert page.inner_text("#description") == api["description"]
    assert api["description"].startswith("matches: cat (") and api["description"].endswith(
        ". no ImageNet concept fits well")
    assert page.locator("#zeroshot-panel").is_hidden()  # the class-name box belongs to the other tab
    assert page.locator("#text-panel").is_hidden()  # this model reads no text of its own

    if explains():  # the heatmap follows the bars when the server explains
        page.wait_for_selector("#heatmap-box:not([hidden])", timeout=120_000)
        page.wait_for_function("document.getElementById('heatmap').naturalWidth > 0")
        assert page.locator("#heatmap").bounding_box()["width"] > 100
    else:
        assert page.locator("#heatmap-box").is_hidden()

    shot = tmp_path / "page-classify.png"
    page.screenshot(path=str(shot), full_page=True)
    save_for_review(shot)
    bars = page.locator("#bars").bounding_box()
    first = page.locator("#bars .track").first.bounding_box()
    # The winning bar is drawn: nearly its whole track is in the accent colour.
    assert bar_pixels(shot, first) > 0.8 * first["width"] * first["height"]
    assert bar_pixels(shot, bars) < 1.2 * first["width"] * first["height"]  # the others are short

    # A photo whose concept is sure enough: the words name it after the class.
    (tmp_path / "coffee.jpg").write_bytes(images["coffee"])
    page.set_input_files("#file-input", str(tmp_path / "coffee.jpg"))
    page.wait_for_function("document.getElementById('top-class').textContent === 'coffee'", timeout=60_000)
    text = page.inner_text("#description")
    assert text.startswith("matches: coffee (")
    assert text.endswith(". resembles: espresso (0.95), a small serving of concentrated coffee…")
    assert not errors
    page.close()


def test_zero_shot_tab_with_a_dropped_image(browser, server, images, tmp_path):
    page = browser.new_page()
    page.goto(server.url + "/")
    page.wait_for_function("document.getElementById('model-info').textContent.includes('photos-model')")
    page.click("#tab-zeroshot")
    page.fill("#classes", "rocket\ncat: a small furry pet with whiskers\nteapot")
    # Drop the file onto the drop zone the way a browser does (a DataTransfer with a File).
    data = base64.b64encode(images["cat"]).decode()
    page.evaluate("""(b64) => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], "dropped.jpg", {type: "image/jpeg"}));
        document.getElementById("drop-zone").dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true}));
    }""", data)
    page.wait_for_selector("#results:not([hidden])", timeout=60_000)
    # The page shows what the API answers for the same classes and descriptions (so the page parsed
    # "name: description" lines the way the API expects them).
    expected = httpx.post(server.url + "/v1/zeroshot", timeout=120,
                          files=[("files", ("dropped.jpg", images["cat"], "image/jpeg"))],
                          data={"classes": json.dumps(["rocket", "cat", "teapot"]),
                                "descriptions": json.dumps({"cat": "a small furry pet with whiskers"})}).json()
    top = expected["results"][0]["top_k"]
    assert page.inner_text("#top-class") == expected["results"][0]["predicted"]
    assert page.locator("#bars .name").all_inner_texts() == [x["class"] for x in top]
    assert page.locator("#bars .pct").all_inner_texts() == [f"{100 * x['probability']:.1f}%" for x in top]
    assert page.inner_text("#drop-text") == "dropped.jpg"
    shot = tmp_path / "page-zeroshot.png"
    page.screenshot(path=str(shot), full_page=True)
    save_for_review(shot)
    assert bar_pixels(shot, page.locator("#bars .track").first.bounding_box()) > 100

    # A file that is not an image: the server's reason is shown, not a blank page.
    page.evaluate("""() => {
        const dt = new DataTransfer();
        dt.items.add(new File(["just text"], "notes.txt", {type: "text/plain"}));
        document.getElementById("drop-zone").dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true}));
    }""")
    page.wait_for_selector("#error:not([hidden])", timeout=60_000)
    assert "notes.txt: not a recognised image format" in page.inner_text("#error")
    page.close()


@pytest.fixture(scope="module")
def paired_server(paired_manifests, tmp_path_factory):
    """A model that reads each image's own text (fusion 'paired'), served."""
    from wordsight.estimator import Classifier
    from wordsight.serve import BackgroundServer, ServeSettings

    train, _ = paired_manifests
    folder = tmp_path_factory.mktemp("paired-served") / "paired-model"
    Classifier(fusion="paired", head=LogisticHead(C=1.0)).fit(str(train)).save(folder)
    with BackgroundServer(ServeSettings(model_dir=str(folder), warm_up=False)) as s:
        yield s


def test_a_paired_model_takes_the_images_own_text_on_the_page(browser, paired_server, paired_manifests):
    import csv

    _, test_csv = paired_manifests
    row = next(r for r in csv.DictReader(open(test_csv)) if r["label"] == "red-new")
    image = test_csv.parent / row["path"]
    page, errors = open_page(browser, paired_server.url + "/")
    page.wait_for_function("document.getElementById('model-info').textContent.includes('paired-model')")
    assert page.locator("#text-panel").is_visible()
    shown = {}
    for text in ("brand new, never used", "worn out and scratched"):
        page.fill("#own-text", text)
        if not shown:
            page.set_input_files("#file-input", str(image))  # choosing the image runs it with the text
        else:
            page.click("#text-run")
        api = httpx.post(paired_server.url + "/v1/predict", timeout=120, data={"texts": json.dumps([text])},
                         files=[("files", (image.name, image.read_bytes(), "image/png"))]).json()["results"][0]
        page.wait_for_function("(want) => document.getElementById('top-class').textContent === want",
                               arg=api["predicted"], timeout=60_000)
        assert page.locator("#bars .pct").all_inner_texts() == [f"{100 * x['probability']:.1f}%" for x in api["top_k"]]
        shown[text] = api["predicted"]
    # the text decides the condition: the page sent it (the image alone tells only the colour)
    assert shown == {"brand new, never used": "red-new", "worn out and scratched": "red-used"}
    page.click("#tab-zeroshot")
    assert page.locator("#text-panel").is_hidden()  # zero-shot reads the image only
    assert not errors
    page.close()
