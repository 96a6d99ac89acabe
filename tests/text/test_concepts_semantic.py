"""Concept bank, readable descriptions, ConSE semantic vectors and the DeViSE-style map."""
from __future__ import annotations

import json

import numpy as np
import pytest

from wordsight.text import (
    ConceptBank,
    TextSpaceMap,
    describe,
    head_weights,
    semantic_vectors,
    short_description,
    top_concepts,
)
from wordsight.text._text import embed_texts

SHOES = ["sandal", "clog", "sneaker", "cowboy boot"]
SHOE_DESCRIPTIONS = ["An open shoe held by straps, worn in summer.", "A heavy shoe with a thick wooden sole.",
                     None, "A tall leather boot with a pointed toe, a high heel and decorative stitching."]


@pytest.fixture(scope="module")
def shoes():
    return ConceptBank.from_list(SHOES, SHOE_DESCRIPTIONS)


@pytest.fixture(scope="module")
def cat_features(cat_image, tmp_path_factory):
    from wordsight.features import extract_features

    folder = tmp_path_factory.mktemp("cat")
    cat_image.save(folder / "cat.jpg")
    return extract_features(folder, "efficientnet-lite0", quiet=True)


def test_short_descriptions():
    # the first sentence, cut at a clause boundary within 60 characters (tests/text/test_wording.py)
    assert short_description("A thick-bodied freshwater fish with a smooth body, usually olive. It has fins.") == \
        "a thick-bodied freshwater fish with a smooth body…"
    assert short_description("A large, heavy-bodied shark with a dark back.") == "a large, heavy-bodied shark with a dark back"
    assert short_description("DVD player: a machine that plays discs") == "DVD player: a machine that plays discs"
    assert short_description(None) == "" and short_description("") == ""


def test_bank_texts_embeddings_and_disk_cache(shoes, tmp_path):
    assert shoes.texts == "descriptions" and len(shoes) == 4
    assert shoes.descriptions[2] is None and shoes.short[2] == ""
    expected = embed_texts(["sandal: An open shoe held by straps, worn in summer.",
                            "clog: A heavy shoe with a thick wooden sole.", "sneaker",
                            "cowboy boot: A tall leather boot with a pointed toe, a high heel and decorative stitching."],
                           "minilm", cache=False)
    assert np.allclose(shoes.embeddings, expected, atol=1e-5)
    assert np.allclose(np.linalg.norm(shoes.embeddings, axis=1), 1, atol=1e-5)
    # cached on disk: a fresh process-level cache reads the same array back
    from wordsight.text import _text
    from wordsight.text._text import cache_root, texts_key

    key = texts_key("minilm", ["sandal: An open shoe held by straps, worn in summer.",
                               "clog: A heavy shoe with a thick wooden sole.", "sneaker",
                               "cowboy boot: A tall leather boot with a pointed toe, a high heel and decorative stitching."])
    assert (cache_root() / f"{key}.npy").exists()
    _text._memory.clear()
    again = ConceptBank.from_list(SHOES, SHOE_DESCRIPTIONS)
    assert np.array_equal(again.embeddings, shoes.embeddings)
    names_only = ConceptBank.from_list(SHOES, texts="names")
    assert names_only.texts == "names" and not np.allclose(names_only.embeddings, shoes.embeddings)
    with pytest.raises(ValueError, match="4 concept names but 2 descriptions"):
        ConceptBank.from_list(SHOES, ["a", "b"])
    with pytest.raises(ValueError, match="texts must be one of"):
        ConceptBank.from_list(SHOES, texts="captions")


def test_bank_from_files(tmp_path):
    (tmp_path / "c.txt").write_text("# my concepts\nsandal\n\nclog\n")
    assert ConceptBank.from_file(tmp_path / "c.txt").names == ["sandal", "clog"]
    (tmp_path / "c.json").write_text(json.dumps({"sandal": "an open shoe", "clog": ["a wooden", "shoe"]}))
    bank = ConceptBank.from_file(tmp_path / "c.json")
    assert bank.descriptions == ["an open shoe", "a wooden shoe"]
    (tmp_path / "c.csv").write_text("name,description\nsandal,an open shoe\nclog,\n")
    bank = ConceptBank.from_file(tmp_path / "c.csv")
    assert bank.names == ["sandal", "clog"] and bank.descriptions == ["an open shoe", None]
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"bad\.json: concept 1 of 2 is int, not a name \(text\)"):
        ConceptBank.from_file(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="none.txt: concept file not found"):
        ConceptBank.from_file(tmp_path / "none.txt")


def test_semantic_vectors_are_conse(shoes):
    E = shoes.embeddings
    p = np.array([[0.6, 0.3, 0.05, 0.05], [0.0, 0.0, 1.0, 0.0]], np.float32)
    v = semantic_vectors(p, shoes, top_t=2)
    mix = (0.6 * E[0] + 0.3 * E[1]) / 0.9  # top-2 renormalised to sum to one
    assert np.allclose(v[0], mix / np.linalg.norm(mix), atol=1e-6)
    assert np.allclose(v[1], E[2], atol=1e-6)  # one concept: its own embedding
    full = semantic_vectors(p, shoes, top_t=1000)
    allmix = p[0] @ E
    assert np.allclose(full[0], allmix / np.linalg.norm(allmix), atol=1e-6)
    assert v.dtype == np.float32 and v.shape == (2, 384)
    assert np.allclose(semantic_vectors(p[0], shoes, top_t=2), v[:1])  # one row works too
    with pytest.raises(ValueError, match="5 columns but the concept bank has 4"):
        semantic_vectors(np.ones((1, 5)), shoes)
    with pytest.raises(ValueError, match="top_t must be >= 1"):
        semantic_vectors(p, shoes, top_t=0)


def test_describe_reads_like_the_issue(shoes):
    p = np.array([[0.41, 0.12, 0.07, 0.40]])
    assert describe(p, shoes, top=3) == [
        "resembles: sandal (0.41), an open shoe held by straps, worn in summer; cowboy boot (0.40), "
        "a tall leather boot with a pointed toe, a high heel…; clog (0.12), a heavy shoe with a thick wooden sole"]
    assert describe(np.array([[0.0, 0.0, 1.0, 0.0]]), shoes, top=1) == ["resembles: sneaker (1.00)"]
    assert top_concepts(p, shoes, top=2) == [[("sandal", pytest.approx(0.41)), ("cowboy boot", pytest.approx(0.40))]]


def test_imagenet_bank_and_a_real_photo(cat_features):
    bank = ConceptBank.imagenet("minilm", texts="names")
    assert len(bank) == 1000 and "cat" in bank.names[281] and bank.names[0] == "tench"
    assert sum(d is not None for d in bank.descriptions) == 975
    assert ConceptBank.imagenet("minilm", texts="names") is bank  # one bank per process
    text = describe(cat_features.probabilities, bank)[0]
    assert text.startswith("resembles: ") and "cat" in text.split(";")[0]
    v = semantic_vectors(cat_features.probabilities, bank)
    words = embed_texts(["a cat", "a truck", "a banana", "a sandal"], "minilm")
    assert int(np.argmax(v @ words.T)) == 0  # the photo lands nearest "a cat" in the text space


def test_head_weights_and_text_space_map(cat_features, tmp_path):
    from wordsight.encoders import load_model

    enc = load_model("efficientnet-lite0")
    W, b = head_weights(enc)
    fc = enc.net.model._fc
    assert W.shape == (1000, 1280)
    assert np.allclose(W, fc.weight.detach().numpy(), atol=1e-5) and np.allclose(b, fc.bias.detach().numpy(), atol=1e-5)
    # the ridge map recovers a planted linear relation
    rng = np.random.default_rng(0)
    F, M = rng.normal(size=(300, 20)), rng.normal(size=(20, 8))
    m = TextSpaceMap(alpha=1e-6).fit(F, F @ M)
    truth = F[:5] @ M
    assert np.allclose(m.transform(F[:5]), truth / np.linalg.norm(truth, axis=1, keepdims=True), atol=1e-4)
    bank = ConceptBank.imagenet("minilm", texts="names")
    tm = TextSpaceMap.from_encoder("efficientnet-lite0", bank, alpha=1.0)
    v = tm.transform(cat_features.embeddings)
    assert v.shape == (1, 384) and np.allclose(np.linalg.norm(v), 1, atol=1e-5)
    tm.save(tmp_path / "map")
    back = TextSpaceMap.load(tmp_path / "map")
    assert np.array_equal(back.transform(cat_features.embeddings), v) and back.encoder_ == "efficientnet-lite0"
    with pytest.raises(ValueError, match=r"features must be \(N, 1280\)"):
        tm.transform(np.zeros((1, 3)))
