"""ZeroShotClassifier: every method, scikit-learn behaviour, speed with 1000 classes, persistence."""
from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.base import clone

from wordsight.storage import ModelFolderError
from wordsight.text import MissingClassesError
from wordsight.text._text import embed_texts
from wordsight.zeroshot import ZeroShotClassifier, waffle_descriptors

CLASSES = ["cat", "truck", "banana"]
DESCRIPTIONS = {
    "cat": ["a small furry pet with whiskers and pointed ears", "a cat sleeping on a sofa"],
    "truck": ["a large vehicle for carrying heavy loads on the road", "a lorry with a big trailer"],
    "banana": ["a long curved yellow fruit", "a bunch of ripe yellow bananas"],
}


@pytest.fixture(scope="module")
def images_as_text():
    """Stand-ins for images in the MiniLM space: captions of three pictures, embedded."""
    return embed_texts(["a kitten with whiskers lying on a couch", "a heavy lorry driving on a highway",
                        "ripe yellow fruit in a bowl"], "minilm")


@pytest.mark.parametrize("method", ["names", "templates", "descriptions", "descriptors", "waffle"])
def test_every_method_classifies_real_minilm_vectors(method, images_as_text):
    clf = ZeroShotClassifier(CLASSES, descriptions=DESCRIPTIONS, method=method, llm="none").fit()
    assert list(clf.classes_) == CLASSES
    assert list(clf.predict(images_as_text)) == CLASSES
    p = clf.predict_proba(images_as_text)
    assert p.shape == (3, 3) and np.allclose(p.sum(1), 1, atol=1e-5)
    assert np.allclose(np.log(p), clf.predict_log_proba(images_as_text), atol=1e-5)
    assert np.array_equal(p.argmax(1), clf.decision_function(images_as_text).argmax(1))


def test_class_texts_per_method():
    names = ZeroShotClassifier(["T-shirt/top"], method="names").fit()
    assert names.class_texts_ == {"T-shirt/top": ["T-shirt or top"]}
    tmpl = ZeroShotClassifier(["cat"], method="templates", templates=["a photo of a {}.", "art of the {}."]).fit()
    assert tmpl.class_texts_ == {"cat": ["a photo of a cat.", "art of the cat."]}
    desc = ZeroShotClassifier(["cat"], descriptions={"cat": ["a cat on a mat", "a small pet"]}).fit()
    assert desc.class_texts_ == {"cat": ["a cat on a mat", "cat: a small pet"]}  # named where it was not
    empty = ZeroShotClassifier(["cat", "dog"], descriptions={"cat": [], "dog": ["a dog"]}).fit()
    assert empty.class_texts_["cat"] == ["cat"]  # no descriptions: the name alone
    w1, w2 = waffle_descriptors("cat", 4, seed=0), waffle_descriptors("cat", 4, seed=1)
    assert w1 == waffle_descriptors("cat", 4, seed=0) and w1 != w2 and len(w1) == 4
    assert all(t.startswith("cat, which has ") for t in w1)


def test_descriptions_and_descriptors_scores_are_what_the_papers_define(images_as_text):
    x = images_as_text / np.linalg.norm(images_as_text, axis=1, keepdims=True)
    desc = ZeroShotClassifier(CLASSES, descriptions=DESCRIPTIONS, method="descriptions").fit()
    dtor = ZeroShotClassifier(CLASSES, descriptions=DESCRIPTIONS, method="descriptors").fit()
    for j, c in enumerate(CLASSES):
        e = embed_texts(desc.class_texts_[c], "minilm")
        mean = e.mean(0)
        # CuPL: cosine with the normalised mean; Menon & Vondrick: the mean of the cosines
        assert np.allclose(desc.decision_function(x)[:, j], x @ (mean / np.linalg.norm(mean)), atol=1e-5)
        assert np.allclose(dtor.decision_function(x)[:, j], (x @ e.T).mean(1), atol=1e-5)


def test_explain_gives_per_descriptor_evidence(images_as_text):
    clf = ZeroShotClassifier(CLASSES, descriptions=DESCRIPTIONS, method="descriptors").fit()
    ex = clf.explain(images_as_text, top=2)
    assert [e["class"] for e in ex] == CLASSES
    assert ex[2]["evidence"][0][0] in clf.class_texts_["banana"]
    sims = [s for _, s in ex[0]["evidence"]]
    assert sims == sorted(sims, reverse=True) and len(sims) == 2
    assert ex[0]["score"] == pytest.approx(clf.decision_function(images_as_text)[0, 0], abs=1e-6)
    forced = clf.explain(images_as_text[:1], classes=["truck"])
    assert forced[0]["class"] == "truck"


def test_scikit_learn_behaviour(images_as_text):
    clf = ZeroShotClassifier(CLASSES, descriptions=DESCRIPTIONS, method="names", scale=10.0)
    assert clf.get_params()["method"] == "names"
    twin = clone(clf).set_params(method="descriptions")
    assert twin.method == "descriptions" and not hasattr(twin, "classes_")
    assert clf.score(images_as_text, CLASSES) == 1.0  # fits on first use
    z = clf.decision_function(images_as_text) * 10.0
    expected = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    assert np.allclose(clf.predict_proba(images_as_text), expected, atol=1e-5)
    with pytest.raises(ValueError, match=r"X must be \(N, 384\).*got shape \(2, 5\)"):
        clf.predict(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="method must be one of"):
        ZeroShotClassifier(CLASSES, method="cupl").fit()
    with pytest.raises(ValueError, match="unique; repeated: cat"):
        ZeroShotClassifier(["cat", "cat"]).fit()


def test_missing_descriptions_are_reported_by_class_name(tmp_path):
    with pytest.raises(MissingClassesError, match="no descriptions for 1 class.*banana"):
        ZeroShotClassifier(CLASSES, descriptions={"cat": ["x"], "truck": ["y"]}).fit()
    path = tmp_path / "d.json"
    path.write_text('{"banana": ["a yellow fruit"], "cat": ["a pet"], "truck": ["a lorry"]}')
    clf = ZeroShotClassifier(CLASSES, descriptions=str(path)).fit()  # the file's key order does not matter
    assert clf.class_texts_["banana"] == ["banana: a yellow fruit"]


def test_class_texts_are_embedded_once_and_1000_classes_predict_fast(counting_encoder):
    enc = counting_encoder(dim=64)
    classes = [f"class number {i}" for i in range(1000)]
    clf = ZeroShotClassifier(classes, method="templates", text_model=enc).fit()
    assert enc.calls == 1 and enc.texts_seen == 8000  # one batched call for all class texts
    X = np.random.default_rng(0).normal(size=(5000, 64)).astype(np.float32)
    t = time.perf_counter()
    for _ in range(3):
        clf.predict_proba(X)
    assert (time.perf_counter() - t) / 3 < 1.0  # 5000 images x 1000 classes
    assert enc.calls == 1  # prediction never touches the text encoder


def test_save_and_load_round_trip(tmp_path, images_as_text):
    clf = ZeroShotClassifier(CLASSES, descriptions=DESCRIPTIONS, method="descriptors").fit()
    folder = clf.save(tmp_path / "zs")
    assert sorted(p.name for p in folder.iterdir()) == ["class_embeddings.safetensors", "zeroshot.json"]
    back = ZeroShotClassifier.load(folder)
    assert np.allclose(back.predict_proba(images_as_text), clf.predict_proba(images_as_text), atol=1e-6)
    assert back.class_texts_ == clf.class_texts_ and list(back.classes_) == CLASSES
    with pytest.raises(ModelFolderError, match="zeroshot.json: missing"):
        ZeroShotClassifier.load(tmp_path)


def test_fit_with_unlabelled_images_centres_them(images_as_text, tmp_path):
    clf = ZeroShotClassifier(CLASSES, descriptions=DESCRIPTIONS, method="descriptions").fit(images_as_text)
    xn = images_as_text / np.linalg.norm(images_as_text, axis=1, keepdims=True)
    assert np.allclose(clf.image_mean_, xn.mean(0), atol=1e-6)
    xc = xn - xn.mean(0)
    xc /= np.linalg.norm(xc, axis=1, keepdims=True)
    assert np.allclose(clf.decision_function(images_as_text), xc @ clf.class_embeddings_.T, atol=1e-5)
    assert list(clf.predict(images_as_text)) == CLASSES
    back = ZeroShotClassifier.load(clf.save(tmp_path / "c"))
    assert np.allclose(back.image_mean_, clf.image_mean_)
    plain = ZeroShotClassifier(CLASSES, descriptions=DESCRIPTIONS, center=False).fit(images_as_text)
    assert plain.image_mean_ is None


def test_descriptions_given_as_a_dict_match_folder_spelled_classes():
    # fit on a folder T-shirt-top/ with the file's key "T-shirt/top" (was refused as missing)
    clf = ZeroShotClassifier(["T-shirt-top", "cat"], descriptions={"T-shirt/top": ["a top"], "cat": "a pet"}).fit()
    assert clf.class_texts_["T-shirt-top"] == ["T-shirt-top: a top"]
    assert clf.class_texts_["cat"] == ["cat: a pet"]
