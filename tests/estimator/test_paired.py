"""Paired text (issue 12): each image's own text as a modality, fusions ``paired`` and ``late``.

The data (``paired_manifests``): noisy red or blue squares whose class is ``<colour>-<condition>``,
the condition said only by the image's own text. Numbers are pinned against numpy/scipy computed
here from the encoders' raw outputs (the text model called directly, not through wordsight's
cache).
"""
from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.special import log_softmax, softmax

from wordsight.estimator import Classifier, ModelFolderError
from wordsight.estimator.fusion import LateFusion, make_fusion
from wordsight.estimator.heads import LogisticHead
from wordsight.io.sources import Source, open_source

WEIGHT = 0.5  # not 1, so that a weight applied in the wrong place changes the numbers


@pytest.fixture(scope="module")
def models(paired_manifests):
    train, _ = paired_manifests
    return {f: Classifier(fusion=make_fusion(f, **({} if f == "image" else {"weight": WEIGHT})),
                          head=LogisticHead(C=1.0)).fit(train) for f in ("image", "paired", "late")}


@pytest.fixture(scope="module")
def test_source(paired_manifests):
    """The test images, every third one without its text."""
    src = open_source(paired_manifests[1])
    return Source([replace(s, text=None) if i % 3 == 0 else s for i, s in enumerate(src.samples)], [])


def _l2(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _own_text(texts):
    """The texts embedded by MiniLM itself, L2-normalised in numpy (NaN rows without text)."""
    from wordsight.encoders import load_model

    out = np.full((len(texts), 384), np.nan)
    have = [i for i, t in enumerate(texts) if t]
    out[have] = _l2(np.asarray(load_model("minilm").model.encode([texts[i] for i in have]), np.float64))
    return out


def resign(folder, edit):
    """Apply ``edit(config)`` and re-sign it as an attacker who knows the format would."""
    import hashlib

    path = folder / "config.json"
    config = json.loads(path.read_text())
    config.pop("config_sha256")
    edit(config)
    blob = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config["config_sha256"] = hashlib.sha256(blob).hexdigest()
    path.write_text(json.dumps(config))


def _accuracy(pred, labels, part=None):
    pick = (lambda v: v) if part is None else (lambda v: str(v).split("-")[part])
    return float(np.mean([pick(p) == pick(v) for p, v in zip(pred, labels)]))


def test_both_modalities_beat_each_alone(paired_manifests):
    train, test = paired_manifests
    labels = open_source(test).labels
    image = Classifier(fusion="image", head=LogisticHead(C=1.0)).fit(train)
    late = Classifier(fusion="late", head=LogisticHead(C=1.0)).fit(train)
    paired = Classifier(fusion="paired", head=LogisticHead(C=1.0)).fit(train)
    pred_image = image.predict(test)
    F = late.featurize(test)
    s = late.state_.paired
    pred_text = late.classes_[s.head.logits(F.matrix[:, s.split:].astype(np.float64)).argmax(1)]
    assert _accuracy(pred_image, labels, 0) == 1.0 and _accuracy(pred_text, labels, 1) == 1.0  # each its own half
    alone = max(_accuracy(pred_image, labels), _accuracy(pred_text, labels))
    assert alone <= 0.75
    assert _accuracy(paired.predict(test), labels) == 1.0
    # late fusion multiplies two heads' probabilities: the image head's confidence about the noise
    # costs it some images here (0.75 at C = 1; paired reads both in one head)
    assert _accuracy(late.predict(test), labels) > alone + 0.2


@pytest.mark.parametrize("fusion", ["paired", "late"])
def test_probabilities_equal_an_independent_numpy_computation(models, test_source, fusion):
    clf = models[fusion]
    blocks = clf.extract(test_source)
    img = _l2(np.asarray(blocks.embeddings["efficientnet-lite0"], np.float64))
    text = _own_text([s.text for s in test_source.samples])
    has = ~np.isnan(text).any(1)
    assert 0 < has.sum() < len(has)
    W, b = clf.head_.linear()
    W2, b2 = clf.state_.paired.head.linear()
    if fusion == "paired":
        want = log_softmax(img @ W2.T + b2, axis=1)  # no text: the image-only head
        rows = np.concatenate([img, WEIGHT * text], 1)[has]
        want[has] = log_softmax(rows @ W.T + b, axis=1)
    else:
        want = log_softmax(img @ W.T + b, axis=1)
        want[has] = log_softmax(want[has] + WEIGHT * log_softmax(text[has] @ W2.T + b2, axis=1), axis=1)
    np.testing.assert_allclose(clf.predict_proba(test_source), softmax(want, axis=1), atol=1e-5)


@pytest.mark.parametrize("fusion", ["paired", "late"])
def test_an_image_without_text_is_decided_by_the_image_alone_never_zero_filled(models, test_source, fusion):
    clf, image = models[fusion], models["image"]
    none = Source([replace(s, text=None) for s in test_source.samples], [])
    F = clf.featurize(none)
    split = clf.state_.paired.split
    assert np.isnan(F.matrix[:, split:]).all() and np.isfinite(F.matrix[:, :split]).all()
    P = clf.predict_proba(none)
    assert np.isfinite(P).all()
    if fusion == "late":  # the image head of a late model is an image model fitted on the same rows
        np.testing.assert_allclose(P, image.predict_proba(none), atol=1e-6)
    else:
        img = F.matrix[:, :split].astype(np.float64)
        np.testing.assert_allclose(P, clf.state_.paired.head.predict_proba(img), atol=1e-9)
        zero_filled = clf.head_.predict_proba(np.nan_to_num(F.matrix.astype(np.float64)))
        assert np.abs(P - zero_filled).max() > 0.05  # what a silent zero-fill would have answered instead
    # a row's text changes only that row's answer
    with_text = clf.predict_proba(test_source)
    has = np.array([s.text is not None for s in test_source.samples])
    np.testing.assert_allclose(with_text[~has], P[~has], atol=1e-9)
    assert np.abs(with_text[has] - P[has]).max() > 0.05


def test_the_weights(models, test_source, paired_manifests):
    paired = models["paired"]
    F = paired.featurize(test_source)
    split = paired.state_.paired.split
    has = ~np.isnan(F.matrix[:, split:]).any(1)
    np.testing.assert_allclose(np.linalg.norm(F.matrix[has, split:], axis=1), WEIGHT, atol=1e-5)
    layout = paired.pipeline_spec()["blocks"]
    assert [b["name"] for b in layout] == ["image:efficientnet-lite0", "paired_text"]
    assert layout[1]["start"] == split and layout[1]["stop"] == split + 384
    # late with weight 0 is its image head
    late0 = Classifier(fusion=LateFusion(weight=0.0), head=LogisticHead(C=1.0)).fit(paired_manifests[0])
    np.testing.assert_allclose(late0.predict_proba(test_source), models["image"].predict_proba(test_source), atol=1e-6)


@pytest.mark.parametrize("fusion", ["paired", "late"])
def test_torch_form_equals_predict_proba(models, test_source, fusion):
    clf = models[fusion]
    blocks = clf.extract(test_source)
    want = clf.predict_proba(blocks)
    emb = {k: torch.from_numpy(v) for k, v in blocks.embeddings.items()}
    paired = torch.from_numpy(clf.paired_text_vectors(blocks))
    for e in emb.values():
        e.requires_grad_(True)
    z = clf.state_.logits_torch(clf.fusion_.fuse_torch(emb, None, paired))
    np.testing.assert_allclose(torch.softmax(z, 1).detach().numpy(), want, atol=1e-5)
    z[:, 0].sum().backward()  # gradients reach the image embeddings, finite for rows with or without text
    g = emb["efficientnet-lite0"].grad
    assert torch.isfinite(g).all() and (g.abs().sum(1) > 0).all()


@pytest.mark.parametrize("fusion", ["paired", "late"])
def test_saved_folder_round_trip_and_refusals(models, test_source, fusion, tmp_path):
    from wordsight.estimator.paired_text import PAIRED_HEAD_FILE

    clf = models[fusion]
    clf.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["paired"]["mode"] == fusion and PAIRED_HEAD_FILE in config["files"]
    assert config["fusion_params"] == {"weight": WEIGHT}
    np.testing.assert_allclose(Classifier.load(tmp_path / "m").predict_proba(test_source),
                               clf.predict_proba(test_source), atol=1e-12)

    def edited(name, edit):
        folder = tmp_path / name
        shutil.copytree(tmp_path / "m", folder)
        resign(folder, edit)
        return folder

    cases = {
        "split": (lambda c: c["paired"].update(split=c["paired"]["split"] - 1), "add up to"),
        "mode": (lambda c: c["paired"].update(mode="paired" if fusion == "late" else "late"), "mode"),
        "weight": (lambda c: c["paired"].update(weight=-1), "weight"),
        "params": (lambda c: c["fusion_params"].update(weight=2.0), "not the model's fusion weight"),
        "gone": (lambda c: c.pop("paired"), PAIRED_HEAD_FILE),
        "image": (lambda c: (c.update(fusion="image", fusion_params={}), c["params"].update(fusion="image")),
                  "'paired' entry"),
    }
    for name, (edit, reason) in cases.items():
        with pytest.raises(ModelFolderError, match=reason):
            Classifier.load(edited(name, edit))


def test_fit_without_texts_is_refused_with_the_reason(paired_manifests):
    src = open_source(paired_manifests[0])
    none = Source([replace(s, text=None) for s in src.samples], [])
    with pytest.raises(ValueError, match="needs paired texts.*0 of 24 training images"):
        Classifier(fusion="paired", head=LogisticHead(C=1.0)).fit(none)
    with pytest.raises(ValueError, match="needs images or FeatureBlocks"):
        Classifier(fusion="late").fit(np.zeros((4, 3)), [0, 1, 0, 1])


def test_training_images_without_text_still_train_the_image_part(paired_manifests, models, test_source):
    src = open_source(paired_manifests[0])
    some = Source([replace(s, text=None) if i % 2 else s for i, s in enumerate(src.samples)], [])
    clf = Classifier(fusion="paired", head=LogisticHead(C=1.0)).fit(some)
    # the image-only head saw all 24 images; the one that reads text, the 12 with text
    assert clf.state_.paired.head.arrays["mean"].shape == (1280,) and clf.head_.arrays["mean"].shape == (1280 + 384,)
    assert np.isfinite(clf.predict_proba(test_source)).all()


def test_cli_predict_takes_texts_from_the_manifest_and_from_text(models, paired_manifests, tmp_path):
    from wordsight.cli import main

    clf = models["late"]
    clf.save(tmp_path / "m")
    test = paired_manifests[1]
    src = open_source(test)
    classes = [str(c) for c in clf.classes_]

    def run(*args):
        out = tmp_path / "p.json"
        assert main(["predict", str(tmp_path / "m"), *args, "--top-k", "4", "--out", str(out), "--quiet"]) == 0
        rows = json.loads(out.read_text())
        return np.array([[{t["class"]: t["probability"] for t in r["top_k"]}[c] for c in classes] for r in rows])

    np.testing.assert_allclose(run(str(test)), clf.predict_proba(src), atol=1e-5)
    two = src.samples[:2]
    got = run(two[0].path, two[1].path, "--text", two[0].text, "--text", "")
    want = clf.predict_proba(Source([two[0], replace(two[1], text=None)], []))
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert main(["predict", str(tmp_path / "m"), two[0].path, "--text", "a", "--text", "b", "--quiet"]) == 1
    models["image"].save(tmp_path / "img")
    assert main(["predict", str(tmp_path / "img"), two[0].path, "--text", "a", "--quiet"]) == 1


def test_fit_cli_and_onnx_export_refusal(paired_manifests, tmp_path):
    from wordsight.cli import main
    from wordsight.export import export_onnx

    assert main(["fit", str(paired_manifests[0]), "--out", str(tmp_path / "m"), "--fusion", "paired", "--C", "1",
                 "--paired-text-weight", "0.25", "--quiet"]) == 0
    clf = Classifier.load(tmp_path / "m")
    assert clf.fusion_name == "paired" and clf.fusion.weight == 0.25
    with pytest.raises(ValueError, match="reads each image's own text"):
        export_onnx(tmp_path / "m", tmp_path / "onnx")


def test_report_ablation_shows_image_own_text_and_both(models, paired_manifests):
    from wordsight.evaluate.metrics import classification_metrics
    from wordsight.evaluate.paired_ablation import paired_ablation

    clf = models["image"]
    train, test = (clf.extract(p) for p in paired_manifests)
    y = test.labels
    rows = {r["name"]: r for r in paired_ablation(clf, train, test, y)}
    assert list(rows) == ["own text (12 of 12 test images have one)", "image + own text (late)",
                          "image + own text (paired)"]
    late = Classifier(fusion="late", head=LogisticHead(C=1.0)).fit(train)  # the image model's options, default weight
    s = late.state_.paired
    P = s.head.predict_proba(late.featurize(test).matrix[:, s.split:].astype(np.float64))
    assert rows["own text (12 of 12 test images have one)"]["accuracy"] == \
        classification_metrics(y, P, late.classes_)["accuracy"]
    assert rows["image + own text (late)"]["accuracy"] == late.score(test, y)
    assert paired_ablation(clf, train, clf.extract(Source([replace(s, text=None) for s in test.samples], [])), y) == []
