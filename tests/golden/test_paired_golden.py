"""Golden numbers for the paired-text fusions on made-up embeddings of two encoders: the fused row
is written out here with numpy (image blocks L2-normalised, then ``paired_text_weight`` times the
own text's MiniLM vector, NaN for an image without text), and so is the layout."""
from __future__ import annotations

import numpy as np
import pytest

from wordsight.estimator import Classifier
from wordsight.estimator.feature_blocks import FeatureBlocks
from wordsight.estimator.fusion import make_fusion
from wordsight.estimator.heads import LogisticHead
from wordsight.io.sources import Sample

A, B = "efficientnet-lite0", "mobilenetv2"
TEXTS = {"x": "a small red cup", "y": "a large blue bowl", "z": "a green plate"}


def l2n(v):
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def blocks():
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1, 2], 4)
    ea = rng.normal(size=(3, 16))[y] + rng.normal(size=(12, 16)) * 0.5
    eb = (rng.normal(size=(3, 6))[y] + rng.normal(size=(12, 6)) * 0.5) * 0.02
    samples = [Sample(f"i{i}.png", "xyz"[c], None if i % 4 == 3 else TEXTS["xyz"[c]]) for i, c in enumerate(y)]
    return FeatureBlocks(samples, {A: ea.astype(np.float32), B: eb.astype(np.float32)})


@pytest.mark.parametrize("fusion, weight, block_weight", [("paired", 0.3, 0.3), ("late", 0.3, 1.0)])
def test_the_fused_row_and_its_layout(blocks, fusion, weight, block_weight):
    from wordsight.encoders import load_model

    clf = Classifier(encoders=(A, B), fusion=make_fusion(fusion, weight=weight), head=LogisticHead(C=1.0)).fit(blocks)
    texts = [s.text for s in blocks.samples]
    have = [i for i, t in enumerate(texts) if t]
    text = np.full((12, 384), np.nan)
    text[have] = l2n(load_model("minilm").model.encode([texts[i] for i in have]))
    want = np.concatenate([l2n(blocks.embeddings[A]), l2n(blocks.embeddings[B]), block_weight * text], 1)
    M = clf.featurize(blocks).matrix
    np.testing.assert_allclose(M, want, atol=1e-5)
    assert np.isnan(M[3, 22:]).all() and np.isfinite(M[3, :22]).all()
    layout = clf.pipeline_spec()["blocks"]
    assert [(b["name"], b["start"], b["stop"]) for b in layout] == [
        (f"image:{A}", 0, 16), (f"image:{B}", 16, 22), ("paired_text", 22, 22 + 384)]
    assert clf.state_.paired.split == 22 and clf.n_features_in_ == 22 + 384
