"""Golden numbers for the zero-shot classifier: scores and probabilities written out with numpy
from the class texts' embeddings (the real MiniLM text model), for each way of averaging texts,
with and without centring, before and after a save/load round trip."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import log_softmax

from wordsight.text._text import embed_texts
from wordsight.zeroshot import ZeroShotClassifier

TOL = 1e-5  # float32 embeddings
DESCRIPTIONS = {"cat": ["a small furry pet that purrs", "a cat sleeping on a sofa"],
                "truck": ["a heavy vehicle for cargo", "a big truck on the highway", "wheels and a trailer"],
                "violin": ["a string instrument played with a bow"]}
TEXTS = {"cat": ["cat: a small furry pet that purrs", "a cat sleeping on a sofa"],  # the name is added where missing
         "truck": ["truck: a heavy vehicle for cargo", "a big truck on the highway", "truck: wheels and a trailer"],
         "violin": ["violin: a string instrument played with a bow"]}


def unit(v):
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def images():
    """Text-space 'images': noisy copies of each class's texts, plus a shared offset (the domain
    direction that centring removes)."""
    rng = np.random.default_rng(3)
    means = {c: embed_texts(TEXTS[c]).mean(0) for c in TEXTS}
    offset = rng.normal(size=384) * 0.08
    order = ["cat", "truck", "violin", "truck", "cat", "violin"]
    rows = [means[c] + offset + rng.normal(size=384) * 0.03 for c in order]
    fit_rows = [means[c] + offset + rng.normal(size=384) * 0.03 for c in ["violin", "cat", "truck", "cat"]]
    return np.asarray(rows, np.float32), np.asarray(fit_rows, np.float32)


def reference(method, X, X_fit, scale, center=True):
    classes = list(TEXTS)
    centres = []
    for c in classes:
        m = embed_texts(TEXTS[c]).astype(np.float64).mean(0)
        centres.append(m if method == "descriptors" else unit(m))
    C = np.asarray(centres)
    Xn = unit(X)
    if center:
        Xn = unit(Xn - unit(X_fit).mean(0))
    scores = Xn @ C.T
    return scores, log_softmax(scale * scores, axis=1)


@pytest.mark.parametrize("method", ["descriptions", "descriptors"])
def test_zero_shot_scores_and_probabilities_equal_the_class_text_means(images, method):
    X, X_fit = images
    zs = ZeroShotClassifier(list(TEXTS), descriptions=DESCRIPTIONS, method=method, scale=7.0).fit(X_fit)
    assert zs.class_texts_ == TEXTS
    scores, logp = reference(method, X, X_fit, 7.0)
    np.testing.assert_allclose(zs.decision_function(X), scores, atol=TOL)
    np.testing.assert_allclose(zs.predict_log_proba(X), logp, atol=TOL)
    np.testing.assert_allclose(zs.predict_proba(X), np.exp(logp), atol=TOL)
    assert zs.predict(X).tolist() == ["cat", "truck", "violin", "truck", "cat", "violin"]


def test_centring_is_off_without_images_or_with_center_false(images):
    X, X_fit = images
    scores, logp = reference("descriptions", X, None, 10.0, center=False)
    plain = ZeroShotClassifier(list(TEXTS), descriptions=DESCRIPTIONS).fit()
    np.testing.assert_allclose(plain.predict_log_proba(X), logp, atol=TOL)  # default scale 10 for MiniLM
    off = ZeroShotClassifier(list(TEXTS), descriptions=DESCRIPTIONS, center=False).fit(X_fit)
    np.testing.assert_allclose(off.decision_function(X), scores, atol=TOL)
    centred = ZeroShotClassifier(list(TEXTS), descriptions=DESCRIPTIONS).fit(X_fit)
    assert np.abs(centred.decision_function(X) - scores).max() > 1e-2  # centring changes the scores


def test_names_method_uses_the_class_name_alone(images):
    X, _ = images
    zs = ZeroShotClassifier(["cat", "truck", "violin"], method="names", scale=5.0).fit()
    C = embed_texts(["cat", "truck", "violin"]).astype(np.float64)
    np.testing.assert_allclose(zs.predict_log_proba(X), log_softmax(5.0 * unit(X) @ unit(C).T, axis=1), atol=TOL)


@pytest.mark.parametrize("center", [True, False])
def test_saved_zero_shot_classifier_predicts_the_same(images, tmp_path, center):
    X, X_fit = images
    zs = ZeroShotClassifier(list(TEXTS), descriptions=DESCRIPTIONS, method="descriptors", scale=4.0,
                            center=center).fit(X_fit)
    back = ZeroShotClassifier.load(zs.save(tmp_path / "zs"))
    np.testing.assert_array_equal(back.predict_log_proba(X), zs.predict_log_proba(X))
    assert back.classes_.tolist() == list(TEXTS) and back.class_texts_ == TEXTS
    assert back.method == "descriptors" and back.scale_ == 4.0 and back.center == center
    assert (back.image_mean_ is None) == (not center)


def test_zero_shot_input_checks(images):
    X, X_fit = images
    zs = ZeroShotClassifier(list(TEXTS), descriptions=DESCRIPTIONS).fit(X_fit)
    np.testing.assert_array_equal(zs.predict_log_proba(X[0]), zs.predict_log_proba(X[:1]))  # one vector = one row
    with pytest.raises(ValueError, match=r"X must be \(N, 384\)"):
        zs.predict(X[:, :100])
    with pytest.raises(ValueError, match="centring needs the mean of several images"):
        ZeroShotClassifier(list(TEXTS), descriptions=DESCRIPTIONS).fit(X_fit[:1])
    with pytest.raises(ValueError, match="class names must be unique; repeated: cat"):
        ZeroShotClassifier(["cat", "cat", "dog"], method="names").fit()
    with pytest.raises(ValueError, match=r"repeated: cat$"):
        ZeroShotClassifier(["cat", "cat", "dog"], method="names").fit()
    with pytest.raises(ValueError, match="method must be one of"):
        ZeroShotClassifier(["cat"], method="guess").fit()


def test_waffle_method_averages_similarities_without_renormalising(images):
    X, _ = images
    zs = ZeroShotClassifier(["cat", "truck"], method="waffle", k=4, scale=3.0).fit()
    texts = zs.class_texts_
    assert [len(texts[c]) for c in ("cat", "truck")] == [4, 4]
    C = np.asarray([embed_texts(texts[c]).astype(np.float64).mean(0) for c in ("cat", "truck")])
    assert np.linalg.norm(C, axis=1).max() < 0.99  # a plain mean of unit vectors is shorter than 1
    np.testing.assert_allclose(zs.decision_function(X), unit(X) @ C.T, atol=TOL)


def test_centring_works_from_two_images_and_large_scales_stay_finite(images):
    X, X_fit = images
    zs = ZeroShotClassifier(list(TEXTS), descriptions=DESCRIPTIONS, scale=5000.0).fit(X_fit[:2])
    logp = zs.predict_log_proba(X)
    assert np.isfinite(logp).all()
    _, ref = reference("descriptions", X, X_fit[:2], 5000.0)
    np.testing.assert_allclose(logp, ref, atol=1e-2)  # float32 scores times 5000


@pytest.mark.parametrize("method", ["names", "descriptions"])
def test_classes_in_the_users_order_keep_their_columns(images, method):
    # classes given unsorted (violin, cat, truck): column j is the j-th class given, never a sorted one
    X, X_fit = images
    order = ["violin", "cat", "truck"]
    kw = {"descriptions": DESCRIPTIONS} if method == "descriptions" else {}
    given = ZeroShotClassifier(order, method=method, scale=7.0, **kw).fit(X_fit)
    ref = ZeroShotClassifier(list(TEXTS), method=method, scale=7.0, **kw).fit(X_fit)
    assert list(given.classes_) == order
    perm = [list(TEXTS).index(c) for c in order]
    np.testing.assert_allclose(given.predict_proba(X), ref.predict_proba(X)[:, perm], atol=1e-6)
    assert list(given.predict(X)) == ["cat", "truck", "violin", "truck", "cat", "violin"]
