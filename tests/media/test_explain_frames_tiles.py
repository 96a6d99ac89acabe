"""Explanations through a tile bag on frames (follow-up of issue 24): a video's and a 16-bit TIFF's
frames are cut into tiles as predictions cut them, the probabilities are ``predict_proba``'s for
the same frames, and one label per image (the mil head's softmax) is explained too."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.special import softmax

from wordsight.cli import main
from wordsight.estimator import Classifier
from wordsight.io.media_options import MediaOptions
from wordsight.io.sources import open_source

from .conftest import photo

ENC = "efficientnet-lite0"


@pytest.fixture(scope="module")
def model(photo_folder, tmp_path_factory):
    folder = tmp_path_factory.mktemp("explain-frames-tiles") / "model"
    Classifier(encoders=(ENC, f"tilebag:2:{ENC}"), head="mil").fit(photo_folder).save(folder)
    return folder


def test_frames_are_tiled_as_predictions_tile_them(model, clip, tmp_path):
    import tifffile

    tif = tmp_path / "pages.tif"
    with tifffile.TiffWriter(tif) as tw:
        for n in ("coffee", "chelsea"):
            tw.write(photo(n).astype(np.uint16) * 257, photometric="rgb")
    out = tmp_path / "x"
    for method in ("tiles", "gradcam"):
        assert main(["explain", str(model), str(clip), str(tif), "--every", "10", "--method", method,
                     "--out", str(out / method)]) == 0
    clf = Classifier.load(model)
    classes = [str(c) for c in clf.classes_]
    samples = open_source([clip, tif], media=MediaOptions(sample="every", every=10)).samples
    want = clf.predict_proba(samples)
    for method in ("tiles", "gradcam"):
        records = json.loads((out / method / "evidence.json").read_text())
        assert [(r["frame"]) for r in records] == [0, 10, 20, 0, 1]
        got = np.array([[dict(r["top_k"]).get(c, 0.0) for c in classes] for r in records])
        top = got.argmax(1)
        np.testing.assert_allclose(got[np.arange(5), top], want[np.arange(5), top], atol=1e-5)
        assert [r["predicted"] for r in records[:3]] == ["cat", "coffee", "cat"]
        for r in records:  # one label per image: the softmax over the pooled scores plus the global terms
            t = r["tiles"]
            assert len(t["tiles"]) == 4 and sum(x["weight"] for x in t["tiles"]) == pytest.approx(1.0)
            assert t["logit"] == pytest.approx(t["pooled"] + t["global"] + t["bias"], abs=1e-9)
        heat = np.load(out / method / "clip.frame10.{}.npy".format(method))
        assert heat.shape == (64, 64) and heat.max() > 0
    from wordsight.explain._pipeline import as_subject

    subject = as_subject(clf)
    for i in (1, 3):  # the torch path from the frame's tiles (a video frame, a 16-bit TIFF page)
        with torch.no_grad():
            scores = subject.scores(subject.view_inputs(subject.read(samples[i])))
        np.testing.assert_allclose(torch.softmax(scores, 1)[0].numpy(), want[i], atol=1e-5)
    records = json.loads((out / "tiles" / "evidence.json").read_text())
    head = clf.head_
    z = head.logits(clf.featurize(samples[:1]).matrix)[0]
    np.testing.assert_allclose(softmax(z)[classes.index(records[0]["target"])], want[0].max(), atol=1e-9)
    assert records[0]["tiles"]["logit"] == pytest.approx(z[classes.index(records[0]["target"])], abs=1e-9)
