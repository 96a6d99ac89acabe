"""Parity for the paired-text fusions (``paired``, ``late``), with texts: for every head, the
explainer's torch path (given the text vectors), ``wordsight predict`` on a manifest with a text
column and ``POST /v1/predict`` with a ``texts`` field all equal ``predict_proba`` within 1e-5,
on test images of which every third has no text."""
from __future__ import annotations

import csv
import json

import httpx
import numpy as np
import pytest
import torch

from wordsight._util.numerics import softmax
from wordsight.cli import main
from wordsight.estimator import HEADS, Classifier
from wordsight.estimator.fusion import FUSION_CLASSES, make_fusion
from wordsight.estimator.heads import head_taking
from wordsight.io.sources import open_source

PAIRED_FUSIONS = [f for f, c in FUSION_CLASSES.items() if c.paired]
HEAD_PARAMS = {"mlp": {"epochs": 2, "min_steps": 40, "hidden": (32,)}, "random_forest": {"n_estimators": 8},
               "knn": {"k": 3}}
CASES = [(h, f) for h in HEADS for f in PAIRED_FUSIONS]


@pytest.fixture(scope="module")
def test_manifest(paired_manifests, tmp_path_factory):
    """The test manifest with every third text left empty (no text: the image alone decides)."""
    src = paired_manifests[1]
    with open(src, newline="") as f:
        rows = list(csv.DictReader(f))
    for i, r in enumerate(rows):
        r["path"] = str(src.parent / r["path"])
        if i % 3 == 0:
            r["text"] = ""
    out = tmp_path_factory.mktemp("paired-parity") / "test.csv"
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, ["path", "label", "text"])
        w.writeheader()
        w.writerows(rows)
    return out


@pytest.fixture(scope="module")
def fitted(paired_manifests, tmp_path_factory):
    out = {}
    for head, fusion in CASES:
        clf = Classifier(fusion=make_fusion(fusion, weight=0.7), head=head_taking(head, C=0.1, **HEAD_PARAMS.get(head, {})),
                         small_input=None).fit(paired_manifests[0])
        folder = tmp_path_factory.mktemp(f"{head}-{fusion}")
        clf.save(folder)
        out[head, fusion] = (clf, folder)
    return out


@pytest.fixture(scope="module")
def encoded(fitted, test_manifest):
    """The explainer's views of the test images and its encoder's outputs on them (the same for
    every model here: one encoder), as FeatureBlocks carrying the images' texts."""
    from wordsight.explain._pipeline import ClassifierSubject

    src = open_source(test_manifest)
    subject = ClassifierSubject(fitted["logistic", "paired"][0])
    views = np.stack([subject.read(s.path).image for s in src.samples])
    blocks = subject.blocks(views)
    blocks.samples = list(src.samples)
    return views, blocks


@pytest.mark.parametrize("head,fusion", CASES)
def test_torch_form_equals_predict_proba(fitted, encoded, head, fusion):
    clf, _ = fitted[head, fusion]
    _, blocks = encoded
    emb = {k: torch.from_numpy(v) for k, v in blocks.embeddings.items()}
    paired = torch.from_numpy(clf.paired_text_vectors(blocks))
    assert torch.isnan(paired).any(1).sum() == 4  # every third image has no text
    with torch.no_grad():
        got = softmax(clf.state_.logits_torch(clf.fusion_.fuse_torch(emb, None, paired)).numpy())
    np.testing.assert_allclose(got, clf.predict_proba(blocks), atol=1e-5)


@pytest.mark.parametrize("fusion", PAIRED_FUSIONS)
def test_the_explainer_path_with_and_without_texts(fitted, encoded, fusion):
    from dataclasses import replace

    from wordsight.explain._pipeline import PAIRED_KEY, ClassifierSubject

    clf, _ = fitted["logistic", fusion]
    views, blocks = encoded
    subject = ClassifierSubject(clf)
    inputs = subject.inputs(views)
    inputs[PAIRED_KEY] = torch.from_numpy(clf.paired_text_vectors(blocks))
    with torch.no_grad():
        fused = subject.fused(inputs)  # the encoder run in torch, then the model's fusion
        got = softmax(clf.state_.logits_torch(fused).numpy())
    np.testing.assert_allclose(got, clf.predict_proba(blocks), atol=1e-5)
    # without texts (as `wordsight explain` runs on images alone) the image part decides
    fused[:, clf.state_.paired.split:] = float("nan")
    with torch.no_grad():
        got = softmax(clf.state_.logits_torch(fused).numpy())
    none = replace(blocks, samples=[replace(s, text=None) for s in blocks.samples])
    np.testing.assert_allclose(got, clf.predict_proba(none), atol=1e-5)


@pytest.mark.parametrize("head,fusion", CASES)
def test_cli_predict_and_the_server_report_predict_proba(fitted, test_manifest, tmp_path, head, fusion):
    from wordsight.serve import BackgroundServer, ServeSettings

    clf, folder = fitted[head, fusion]
    src = open_source(test_manifest)
    want = clf.predict_proba(src)
    assert sum(s.text is None for s in src.samples) == 4
    classes = [str(c) for c in clf.classes_]
    out = tmp_path / "p.json"
    assert main(["predict", str(folder), str(test_manifest), "--top-k", "4", "--out", str(out), "--quiet"]) == 0
    rows = json.loads(out.read_text())
    got = np.array([[{t["class"]: t["probability"] for t in r["top_k"]}[c] for c in classes] for r in rows])
    np.testing.assert_allclose(got, want, atol=1e-5)
    with BackgroundServer(ServeSettings(model_dir=str(folder), warm_up=False)) as server:
        files = [("files", (f"{i}.png", open(s.path, "rb").read(), "image/png")) for i, s in enumerate(src.samples)]
        texts = json.dumps([s.text for s in src.samples])
        r = httpx.post(server.url + "/v1/predict", files=files, data={"top_k": "4", "texts": texts}, timeout=300)
    assert r.status_code == 200, r.text
    got = np.array([[{t["class"]: t["probability"] for t in res["top_k"]}[c] for c in classes]
                    for res in r.json()["results"]])
    np.testing.assert_allclose(got, want, atol=1e-5)
