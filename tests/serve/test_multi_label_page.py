"""The page shows a multi-label model's tags (issue 24) in headless Chromium: the label set with
each tag's own probability, as POST /v1/predict answers, and every label's bar."""
from __future__ import annotations

import httpx
import pytest

from wordsight.estimator import Classifier
from wordsight.io.sources import open_source

from .conftest import open_page

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tagger_server(mosaic_manifests, tmp_path_factory, server):
    from wordsight.serve import BackgroundServer, ServeSettings

    folder = tmp_path_factory.mktemp("page-tagger") / "mosaic-tagger"
    Classifier(task="multi-label", encoders=("efficientnet-lite0",)).fit(mosaic_manifests[0]).save(folder)
    with BackgroundServer(ServeSettings(model_dir=str(folder), warm_up=False, top_k=10)) as s:
        yield s


def test_the_page_shows_the_label_set_with_each_probability(browser, tagger_server, mosaic_manifests):
    page, errors = open_page(browser, tagger_server.url + "/")
    page.wait_for_function("document.getElementById('model-info').textContent.includes('10 labels (tags)')")
    seen_sets = set()
    for sample in open_source(mosaic_manifests[1]).samples[:4]:
        api = httpx.post(tagger_server.url + "/v1/predict", timeout=120,
                         files=[("files", ("m.png", open(sample.path, "rb").read(), "image/png"))]).json()["results"][0]
        page.set_input_files("#file-input", sample.path)
        p = {t["class"]: t["probability"] for t in api["top_k"]}
        want = ("tags: " + ", ".join(f"{t} {100 * p[t]:.1f}%" for t in api["predicted"])) if api["predicted"] else "no tags"
        # this upload's answer on screen (the line carries each probability to 0.1%)
        page.wait_for_function("t => document.getElementById('top-class').textContent === t", arg=want,
                               timeout=60_000)
        assert sorted(t["class"] for t in api["tags"]) == sorted(api["predicted"])
        names = page.locator("#bars .name").all_inner_texts()
        pcts = page.locator("#bars .pct").all_inner_texts()
        assert names == [t["class"] for t in api["top_k"]]  # every label: probabilities are independent
        assert pcts == [f"{100 * t['probability']:.1f}%" for t in api["top_k"]]
        assert page.locator("#bars li.tag .name").all_inner_texts() == [c for c in names if c in api["predicted"]]
        seen_sets.add(tuple(api["predicted"]))
    assert len(seen_sets) > 1  # different mosaics, different label sets on screen
    assert not errors, errors
