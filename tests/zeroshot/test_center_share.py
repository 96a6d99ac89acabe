"""The few-shot prior's centring (issue 26): a share of the images' mean, ``(C - 1) / C`` of it
with ``center="others"``, so that a few labelled images do not pull every image away from its
own class."""
from __future__ import annotations

import numpy as np
import pytest

from wordsight.text._text import embed_texts
from wordsight.zeroshot import ZeroShotClassifier
from wordsight.zeroshot.pipeline import ZeroShotPipeline


def unit(X):
    return X / np.linalg.norm(X, axis=-1, keepdims=True)


def test_a_share_subtracts_that_share_of_the_mean(tmp_path):
    X = embed_texts(["a kitten on a sofa", "a lorry on a road", "a bowl of fruit", "a cat asleep"], "minilm")
    half = ZeroShotClassifier(["cat", "truck"], method="names", center=0.5).fit(X)
    whole = ZeroShotClassifier(["cat", "truck"], method="names", center=True).fit(X)
    np.testing.assert_allclose(half.image_mean_, 0.5 * unit(X).mean(0), atol=1e-6)
    np.testing.assert_allclose(whole.image_mean_, unit(X).mean(0), atol=1e-6)
    expected = unit(unit(X) - 0.5 * unit(X).mean(0)) @ half.class_embeddings_.T
    np.testing.assert_allclose(half.decision_function(X), expected, atol=1e-5)
    back = ZeroShotClassifier.load(half.save(tmp_path / "half"))
    np.testing.assert_allclose(back.decision_function(X), half.decision_function(X), atol=1e-6)


def test_a_prior_right_alone_and_wrong_centred_on_two_labelled_images_stays_right():
    """Two labelled images, a very sure cat and a barely-truck: their mean is mostly "cat", and
    subtracting all of it turns a less typical cat into a truck; the other class's share (half)
    keeps it a cat, as the uncentred prior has it."""
    clf = ZeroShotClassifier(["cat", "truck"], method="names", center=False).fit()
    t_cat, t_truck = clf.class_embeddings_.astype(np.float64)
    rng = np.random.default_rng(0)
    domain = rng.normal(size=t_cat.shape)
    basis = np.linalg.qr(np.stack([t_cat, t_truck], 1))[0]
    domain -= basis @ (basis.T @ domain)  # what every image of the domain shares, neither class
    domain /= np.linalg.norm(domain)
    support = np.stack([domain + 2.0 * t_cat, domain + 0.1 * t_truck])
    new_cat = (domain + 0.3 * t_cat)[None]

    def predict(center):
        return ZeroShotClassifier(["cat", "truck"], method="names", center=center).fit(
            support if center else None).predict(new_cat)[0]

    assert predict(False) == "cat"
    assert predict(True) == "truck"  # the whole mean of the two labelled images
    assert predict(0.5) == "cat"     # the other class's share of it (C = 2)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_others_is_the_other_classes_share_of_the_mean(photo_folder, n_classes):
    classes = ["cat", "coffee cup", "rocket"][:n_classes]
    others = ZeroShotPipeline(classes, center="others").fit(photo_folder)
    whole = ZeroShotPipeline(classes, center="yes").fit(photo_folder)
    assert others.centered_ and whole.centered_ and set(others.ways_) == {"conse", "linear"}
    for way, zs in others.ways_.items():
        np.testing.assert_allclose(zs.image_mean_, (n_classes - 1) / n_classes * whole.ways_[way].image_mean_,
                                   rtol=1e-6, atol=1e-7)
    # one image: nothing to centre on (as "yes")
    reading = whole.reading(whole.read(photo_folder))
    one = ZeroShotPipeline(classes, center="others").fit(reading={k: v[:1] for k, v in reading.items()})
    assert not one.centered_ and all(zs.image_mean_ is None for zs in one.ways_.values())
