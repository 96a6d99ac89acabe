"""Golden numbers for each fusion, through the Classifier (``featurize``, ``predict_proba``,
``pipeline_spec``) on made-up embeddings and ImageNet probabilities: the fused rows are written
out here with numpy (blocks L2-normalised in float32; the text block times ``text_weight``)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax

from wordsight.estimator import Classifier
from wordsight.estimator.feature_blocks import FeatureBlocks
from wordsight.estimator.fusion import ConcatFusion, PriorFusion, make_fusion
from wordsight.estimator.heads import LogisticHead
from wordsight.io.sources import Sample

A, B = "efficientnet-lite0", "mobilenetv2"
TOL = 1e-6


def l2n(v):
    v = np.asarray(v, np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


@pytest.fixture(scope="module")
def blocks():
    rng = np.random.default_rng(9)
    y = np.repeat([0, 1, 2], 4)
    ea = (rng.normal(size=(3, 16))[y] + rng.normal(size=(12, 16)) * 0.5) * 9
    eb = (rng.normal(size=(3, 6))[y] + rng.normal(size=(12, 6)) * 0.5) * 0.02
    ea[5] = 0.0  # an all-zero embedding stays zero (no division by zero)
    probs = softmax(rng.normal(size=(12, 1000)) * 3, axis=1).astype(np.float32)
    samples = [Sample(f"i{i}.png", "xyz"[c]) for i, c in enumerate(y)]
    return FeatureBlocks(samples, {A: ea.astype(np.float32), B: eb.astype(np.float32)}, probs, A), y


def test_image_fusion_of_two_encoders_is_the_concatenation_of_normalised_blocks(blocks):
    fb, y = blocks
    clf = Classifier(encoders=(A, B), head=LogisticHead(C=1.0)).fit(fb)
    M = clf.featurize(fb).matrix
    expected = np.concatenate([l2n(fb.embeddings[A]), l2n(fb.embeddings[B])], 1)
    np.testing.assert_allclose(M, expected, atol=TOL)
    assert M.dtype == np.float32 and not np.isnan(M).any() and np.abs(M[5, :16]).max() == 0
    assert clf.pipeline_spec()["blocks"] == [
        {"name": f"image:{A}", "start": 0, "stop": 16, "computed": f"L2-normalised pooled embedding of {A}"},
        {"name": f"image:{B}", "start": 16, "stop": 22, "computed": f"L2-normalised pooled embedding of {B}"}]


@pytest.mark.parametrize("fusion, weight", [("concat", 0.5), ("text", 2.0)])
def test_text_fusions_append_the_weighted_normalised_semantic_vector(blocks, fusion, weight):
    from wordsight.text import semantic_vectors

    fb, y = blocks
    clf = Classifier(encoders=(A,), fusion=make_fusion(fusion, text_weight=weight), head=LogisticHead(C=1.0)).fit(fb)
    semantic = semantic_vectors(fb.probs, bank=clf.concept_bank())
    text = weight * l2n(semantic)
    expected = np.concatenate([l2n(fb.embeddings[A]), text], 1) if fusion == "concat" else text
    M = clf.featurize(fb).matrix
    np.testing.assert_allclose(M, expected, atol=TOL)
    np.testing.assert_allclose(np.linalg.norm(M[:, -text.shape[1]:], axis=1), weight, rtol=1e-5)
    start = 16 if fusion == "concat" else 0
    assert clf.pipeline_spec()["blocks"][-1] == {"name": "text", "start": start, "stop": start + text.shape[1],
                                                 "computed": "text_weight * ConSE semantic vector (L2-normalised)"}
    assert clf.n_features_in_ == expected.shape[1]


def test_prior_fusion_feeds_the_head_the_image_blocks_only(blocks):
    fb, _ = blocks
    full = np.random.default_rng(1).normal(size=(len(fb), 1280)).astype(np.float32)  # the prior's own reading
    fb = FeatureBlocks(fb.samples, fb.embeddings, fb.probs, A, prior_features={(A, "plain"): (fb.probs, full)})
    clf = Classifier(encoders=(A,), fusion=PriorFusion(view="plain", weight=0.0), head=LogisticHead(C=1.0)).fit(fb)
    np.testing.assert_allclose(clf.featurize(fb).matrix, l2n(fb.embeddings[A]), atol=TOL)
    image_only = Classifier(encoders=(A,), head=LogisticHead(C=1.0)).fit(fb)
    np.testing.assert_allclose(clf.predict_proba(fb), image_only.predict_proba(fb), atol=1e-9)


def test_take_keeps_rows_aligned_across_blocks(blocks):
    fb, _ = blocks
    part = fb.take([7, 2])
    assert [s.path for s in part.samples] == ["i7.png", "i2.png"] and part.labels == ["y", "x"]
    np.testing.assert_array_equal(part.embeddings[B], fb.embeddings[B][[7, 2]])
    np.testing.assert_array_equal(part.probs, fb.probs[[7, 2]])
    assert part.probs_encoder == A and len(part) == 2


def test_unknown_fusion_and_missing_probabilities_are_refused(blocks):
    fb, _ = blocks
    no_probs = FeatureBlocks(fb.samples, {A: fb.embeddings[A]})
    with pytest.raises(ValueError, match="'fusion' parameter of Classifier must be a str among"):
        Classifier(fusion="early").fit(fb)
    with pytest.raises(ValueError, match="needs ImageNet probabilities"):
        Classifier(fusion="concat").fit(no_probs)
    with pytest.raises(ValueError, match="fusion 'prior' needs ImageNet probabilities"):
        Classifier(fusion=PriorFusion(view="plain")).fit(no_probs)


def test_text_block_starts_after_every_image_block(blocks):
    fb, _ = blocks
    clf = Classifier(encoders=(A, B), fusion=ConcatFusion(text_weight=1.0), head=LogisticHead(C=1.0)).fit(fb)
    layout = clf.pipeline_spec()["blocks"]
    assert [(b["name"], b["start"], b["stop"]) for b in layout] == [(f"image:{A}", 0, 16), (f"image:{B}", 16, 22),
                                                                    ("text", 22, 22 + 384)]
    assert clf.featurize(fb).matrix.shape == (12, 22 + 384)


def test_prior_fusion_layout_lists_the_image_blocks(blocks):
    fb, _ = blocks
    full = np.random.default_rng(1).normal(size=(len(fb), 1280)).astype(np.float32)
    fb = FeatureBlocks(fb.samples, fb.embeddings, fb.probs, A, prior_features={(A, "plain"): (fb.probs, full)})
    clf = Classifier(encoders=(A, B), fusion=PriorFusion(view="plain", weight=0.3), head=LogisticHead(C=1.0)).fit(fb)
    assert [(b["name"], b["start"], b["stop"]) for b in clf.pipeline_spec()["blocks"]] == [
        (f"image:{A}", 0, 16), (f"image:{B}", 16, 22)]


@pytest.mark.parametrize("fusion, weight", [("image", None), ("concat", 0.5), ("concat", 3.0), ("text", 2.0),
                                            ("concat", 0.0)])
def test_torch_rows_equal_the_written_out_rows_at_any_text_weight(blocks, fusion, weight):
    # the explainer's and the export's torch form must weigh the text block as the numpy rows do
    import torch

    fb, _ = blocks
    semantic = np.random.default_rng(4).normal(size=(12, 384)) * 0.1
    f = make_fusion(fusion, **({} if weight is None else {"text_weight": weight})).bind((A, B))
    image = [l2n(fb.embeddings[A]), l2n(fb.embeddings[B])] if fusion != "text" else []
    text = [weight * l2n(semantic)] if weight is not None else []
    expected = np.concatenate(image + text, 1)
    got = f.fuse_torch({e: torch.from_numpy(fb.embeddings[e]) for e in (A, B)}, torch.from_numpy(semantic)).numpy()
    np.testing.assert_allclose(got, expected, atol=TOL)
    np.testing.assert_allclose(f.fuse(fb.embeddings, semantic, 12), expected, atol=TOL)
    if weight is not None:
        np.testing.assert_allclose(np.linalg.norm(got[:, -384:], axis=1), weight, atol=1e-6)


@pytest.mark.parametrize("fusion, weight, block_weight", [("paired", 0.3, 0.3), ("paired", 2.5, 2.5),
                                                          ("late", 0.3, 1.0)])
def test_torch_rows_weigh_the_own_text_block_as_the_numpy_rows(blocks, fusion, weight, block_weight):
    # a paired model's own-text block: its weight (paired) or none (late, whose weight mixes two heads)
    import torch

    fb, _ = blocks
    text = np.random.default_rng(5).normal(size=(12, 384))
    text[[2, 7]] = np.nan  # images without text stay NaN in both forms
    f = make_fusion(fusion, weight=weight).bind((A, B))
    expected = np.concatenate([l2n(fb.embeddings[A]), l2n(fb.embeddings[B]), block_weight * l2n(text)], 1)
    got = f.fuse_torch({e: torch.from_numpy(fb.embeddings[e]) for e in (A, B)}, None, torch.from_numpy(text)).numpy()
    np.testing.assert_allclose(got, expected, atol=TOL)
    np.testing.assert_allclose(f.fuse(fb.embeddings, None, 12, text), expected, atol=TOL)
    assert np.isnan(got[[2, 7], 22:]).all() and not np.isnan(np.delete(got, [2, 7], 0)).any()
