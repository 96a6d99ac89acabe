"""The Classifier on real images (the small Fashion-MNIST folder) with the real default encoder."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import wordsight
from wordsight._util.numerics import log_softmax
from wordsight.estimator import Augment, Classifier
from wordsight.estimator.fusion import ConcatFusion, PriorFusion
from wordsight.estimator.heads import LogisticHead

CLASSES = ["Ankle boot", "Bag", "Coat", "Dress", "Pullover", "Sandal", "Shirt", "Sneaker", "T-shirt-top", "Trouser"]


@pytest.fixture(scope="module")
def fitted(fashion_blocks):
    train, _ = fashion_blocks
    return Classifier().fit(train)


def test_fit_on_a_folder_predicts_fashion_mnist(fashion_folder, fitted):
    clf = wordsight.Classifier().fit(fashion_folder / "train")  # features come from the session cache
    assert clf.class_names == CLASSES
    proba = clf.predict_proba(fashion_folder / "test")
    assert proba.shape == (40, 10)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-9)
    acc = clf.score(fashion_folder / "test", [p.parent.name for p in sorted((fashion_folder / "test").rglob("*.png"))])
    assert acc >= 0.65  # 6 images per class; measured 0.75
    np.testing.assert_array_equal(proba, fitted.predict_proba(fashion_folder / "test"))
    assert clf.head_.info["C"] in [float(c) for c in np.logspace(-4, 2, 7)]


def test_featurize_keeps_rows_aligned_and_reports_failures(fashion_folder, fitted, tmp_path):
    files = sorted((fashion_folder / "test").rglob("*.png"))[:3]
    broken = tmp_path / "broken.png"
    broken.write_bytes(files[0].read_bytes()[:40])  # truncated
    inputs = [str(files[0]), str(broken), str(files[1]), str(files[2])]
    F = fitted.featurize(inputs)
    assert F.matrix.shape == (3, 1280)
    assert [s.path for s in F.samples] == [inputs[0], inputs[2], inputs[3]]
    assert F.rows.tolist() == [0, 2, 3]
    assert [f.path for f in F.failures] == [str(broken)]
    pred = fitted.predict(inputs)
    assert pred[1] is None and all(isinstance(p, str) for p in pred[[0, 2, 3]])
    assert np.isnan(fitted.predict_proba(inputs)[1]).all()
    records = fitted.predict_records(inputs, top_k=3)
    assert [r.error is None for r in records] == [True, True, True, False]
    assert len(records[0].top_k) == 3 and records[0].top_k[0][0] == records[0].predicted
    assert records[0].description.startswith(f"matches: {records[0].predicted} (")  # tests/estimator/test_words.py
    texts = fitted.describe(inputs)
    assert texts[1] is None and texts[0] == records[0].description


def test_labels_given_as_y_with_a_list_of_paths(fashion_folder, fashion_blocks):
    files = sorted((fashion_folder / "train").rglob("*.png"))
    y = ["shoe" if f.parent.name in ("Sandal", "Sneaker", "Ankle boot") else "other" for f in files]
    clf = Classifier(head=LogisticHead(C=0.1)).fit([str(f) for f in files], y)
    assert clf.class_names == ["other", "shoe"]
    test = sorted((fashion_folder / "test").rglob("*.png"))
    truth = ["shoe" if f.parent.name in ("Sandal", "Sneaker", "Ankle boot") else "other" for f in test]
    assert clf.score([str(f) for f in test], truth) >= 0.9


def test_linear_head_and_spec_reproduce_the_logits_in_torch(fashion_folder, fitted):
    """image -> encoder -> L2 norm -> W x + b, step by step, equals the Classifier's output."""
    path = sorted((fashion_folder / "test").rglob("*.png"))[0]
    enc = wordsight.load_model("efficientnet-lite0")
    x = torch.from_numpy(fitted.model_input(path.read_bytes()))[None]
    assert x.shape == (1, 3, 160, 160)  # tiny images run at the extractor's reduced size
    W, b = fitted.linear_head()
    with torch.no_grad():
        e = enc(x)["embedding"]
        fused = e / e.norm(dim=1, keepdim=True)
        logits = fused.double() @ torch.from_numpy(W).T + torch.from_numpy(b)
    expected = fitted.decision_function([str(path)])[0]
    np.testing.assert_allclose(log_softmax(logits.numpy())[0], expected, atol=1e-4)
    spec = fitted.pipeline_spec()
    assert spec["blocks"] == [{"name": "image:efficientnet-lite0", "start": 0, "stop": 1280,
                               "computed": "L2-normalised pooled embedding of efficientnet-lite0"}]
    assert spec["classes"] == CLASSES


def test_concat_fusion_appends_the_semantic_vector(fashion_blocks):
    train, test = fashion_blocks
    clf = Classifier(fusion=ConcatFusion(text_weight=0.5), head=LogisticHead(C=0.01)).fit(train)
    F = clf.featurize(test)
    assert F.matrix.shape == (40, 1280 + 384)
    np.testing.assert_allclose(np.linalg.norm(F.matrix[:, :1280], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(F.matrix[:, 1280:], axis=1), 0.5, rtol=1e-5)
    assert [b["name"] for b in clf.pipeline_spec()["blocks"]] == ["image:efficientnet-lite0", "text"]
    assert clf.score(test, test.labels) >= 0.6
    text_only = Classifier(fusion="text", head=LogisticHead(C=0.1)).fit(train)
    assert text_only.featurize(test).matrix.shape == (40, 384)
    assert text_only.score(test, test.labels) > 0.3  # chance is 0.1


def test_prior_fusion_with_the_logistic_head_is_the_prior_probe(fashion_blocks):
    from wordsight.estimator.prior_probe import PriorProbe

    train, test = fashion_blocks
    clf = Classifier(fusion="prior", head=LogisticHead(C=0.1)).fit(train)
    assert clf.state_.probe is not None and clf.prior_mix_.scores["how"].startswith("prior probe")
    # the probe fitted by hand on the same fused rows and prior log-probabilities predicts the same
    y = np.searchsorted(clf.classes_, np.asarray(train.labels))
    probe = PriorProbe(C=0.1).fit(clf.fuse(train), y, clf.prior_log_proba(train), len(clf.classes_))
    want = np.exp(probe.logits(clf.fuse(test), clf.prior_log_proba(test)))
    np.testing.assert_allclose(clf.predict_proba(test), want, atol=1e-9)
    assert clf.prior_mix_.weight == probe.info["strength"] > 0


def test_prior_fusion_weight_is_chosen_on_training_images_only(fashion_blocks):
    train, test = fashion_blocks
    clf = Classifier(fusion=PriorFusion(weight="held-out"), head=LogisticHead(C=0.1)).fit(train)
    mix = clf.prior_mix_
    assert clf.state_.probe is None and mix.scores["how"].startswith("leave-one-shot-out")
    assert str(mix.weight) in mix.scores["scores"]
    assert 0.01 < mix.temperature < 100
    # Fitting never sees the test images: a fit after predicting them is the same fitted model.
    P = clf.predict_proba(test)
    again = Classifier(fusion=PriorFusion(weight="held-out"), head=LogisticHead(C=0.1)).fit(train)
    assert again.prior_mix_ == mix
    np.testing.assert_array_equal(again.predict_proba(test), P)
    # the prediction is the documented mix of the image head and the prior, whatever the weight
    from scipy.special import log_softmax as ref_log_softmax
    from scipy.special import softmax as ref_softmax

    head = clf.head_.logits(clf.featurize(test).matrix.astype(np.float64))
    prior = clf.prior_log_proba(test)
    w, t, s = mix.weight, mix.temperature, mix.head_temperature
    z = ref_log_softmax(head, axis=1) if w == 0 else \
        ref_log_softmax(s * head, axis=1) + w * ref_log_softmax(t * prior, axis=1)
    np.testing.assert_allclose(P, ref_softmax(z, axis=1), atol=1e-9)
    image_only = Classifier(head=LogisticHead(C=0.1)).fit(train)
    fixed = Classifier(fusion=PriorFusion(weight=0.0), head=LogisticHead(C=0.1)).fit(train)
    np.testing.assert_allclose(fixed.predict_proba(test), image_only.predict_proba(test), atol=1e-9)


def test_one_shot_prior_uses_augmented_views(fashion_blocks):
    from wordsight.evaluate import draw_k_shot

    train, _ = fashion_blocks
    one = train.take(draw_k_shot(train.labels, 1, seed=0))
    clf = Classifier(fusion=PriorFusion(weight="held-out")).fit(one)
    mix = clf.prior_mix_
    assert mix.scores["how"].startswith("augmented views")
    # on views the head's temperature stays 1 and no gain is required: the best held-out accuracy,
    # ties to the lower log-loss, then the smaller weight, among the documented grid
    scores = mix.scores["scores"]
    assert list(scores) == ["0.0", "0.1", "0.2", "0.35", "0.5", "0.75", "1.0", "1.5", "2.0", "3.0", "5.0", "10.0"]
    best = max(scores, key=lambda w: (scores[w]["accuracy"], -round(scores[w]["log_loss"], 6), -float(w)))
    assert mix.weight == float(best) and mix.head_temperature == 1.0


def test_augmentation_is_deterministic_and_adds_training_rows(fashion_folder, cat_image):
    aug = Augment()
    a, b, c = aug.apply(cat_image, 1), aug.apply(cat_image, 1), aug.apply(cat_image, 2)
    assert a.size == cat_image.size
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    assert aug.view_key(1) != Augment(rotation=0).view_key(1)
    files = [str(p) for p in sorted((fashion_folder / "train").rglob("*.png"))[::6]]  # 1 per class
    clf = Classifier(head=LogisticHead(C=1.0), augment=1)
    blocks = clf.extract(files, views=1)
    assert set(blocks.views) == {1}
    assert not np.allclose(blocks.views[1].embeddings["efficientnet-lite0"], blocks.embeddings["efficientnet-lite0"])
    clf.fit(files, [p.split("/")[-2] for p in files])
    assert clf.score(files, [p.split("/")[-2] for p in files]) == 1.0


def test_two_encoders_are_concatenated(fashion_folder):
    files = [str(p) for p in sorted((fashion_folder / "train").rglob("*.png"))[::3]]  # 2 per class
    labels = [p.split("/")[-2] for p in files]
    clf = Classifier(encoders=("efficientnet-lite0", "mobilenetv2"), head=LogisticHead(C=0.1)).fit(files, labels)
    assert clf.n_features_in_ == 2560
    assert [b["name"] for b in clf.pipeline_spec()["blocks"]] == ["image:efficientnet-lite0", "image:mobilenetv2"]
    assert clf.score(files, labels) == 1.0


def test_prior_weight_needs_a_real_held_out_gain():
    from wordsight.estimator.prior_mix import choose_weight

    y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    head = np.eye(3)[y] * 2.0
    wrong = [1, 4, 7]  # the head gets three images wrong (sure of class 0 instead)
    head[wrong] = np.eye(3)[[0, 0, 0]] * 2.0
    prior = np.log(np.full((10, 3), 0.05) + np.eye(3)[y] * 0.9)  # a prior that knows the answer
    w, scores = choose_weight(head, prior, y, temperature=1.0)
    assert w > 0 and scores[str(w)]["accuracy"] == 1.0 and scores["0.0"]["accuracy"] == 0.7
    w_one, _ = choose_weight(head, prior, y, temperature=1.0, grid=(0.0, 0.1), min_gain=2)
    assert w_one == 0.0  # a weight too small to fix two images is no gain
    useless = np.log(np.full((10, 3), 1 / 3))
    assert choose_weight(head, useless, y, temperature=1.0)[0] == 0.0


def test_language_prior_reads_inverted_garments_and_beats_chance(fashion_blocks):
    train, test = fashion_blocks
    clf = Classifier(fusion="prior", head=LogisticHead(C=0.1)).fit(train)
    assert clf.prior_.view_ == "light-background"
    assert set(clf.prior_.ways_log_proba(clf.prior_features(test))) == {"conse", "linear"}
    logp = clf.prior_log_proba(test)
    np.testing.assert_allclose(np.exp(logp).sum(1), 1.0, rtol=1e-6)
    zero_shot = np.mean(clf.classes_[logp.argmax(1)] == np.asarray(test.labels))
    assert zero_shot >= 0.25, zero_shot  # chance is 0.1; 33% on 1,000 test images (docs/benchmarks.md)
    plain = Classifier(fusion=PriorFusion(view="plain"), head=LogisticHead(C=0.1)).fit(train)
    assert plain.prior_.view_ == "plain"
    assert not np.allclose(plain.prior_log_proba(test), logp)
    with pytest.raises(ValueError, match="'view' parameter of PriorFusion"):
        Classifier(fusion=PriorFusion(view="upside-down")).fit(train)


@pytest.mark.parametrize("per_class, takes_head_c", [(31, False), (32, True)])
def test_prior_probe_takes_the_heads_cross_validated_penalty_from_32_images_per_class(per_class, takes_head_c):
    from wordsight.estimator.feature_blocks import FeatureBlocks
    from wordsight.io.sources import Sample

    rng = np.random.default_rng(1)
    y = np.repeat([0, 1, 2], per_class)
    emb = (rng.normal(size=(3, 1280))[y] * 0.5 + rng.normal(size=(len(y), 1280))).astype(np.float32)
    logits = rng.normal(size=(len(y), 1000))
    probs = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
    samples = [Sample(f"i{i}.png", "abc"[c]) for i, c in enumerate(y)]
    blocks = FeatureBlocks(samples, {"efficientnet-lite0": emb}, probs, "efficientnet-lite0",
                           prior_features={("efficientnet-lite0", "plain"): (probs, emb)})
    clf = Classifier(fusion=PriorFusion(view="plain")).fit(blocks)
    head_c, probe_c = clf.head_.info["C"], clf.state_.probe.info["C"]
    assert "c_search" in clf.head_.info and head_c != 0.1
    assert probe_c == (head_c if takes_head_c else 0.1)
