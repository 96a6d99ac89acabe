"""Issue 12: descriptions that discriminate (FuDD pairs and answers, selection, weights, the verb)."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from wordsight.cli import main
from wordsight.text.description_weights import selection_weights, separation_scores
from wordsight.text.differential import FUDD_PROMPTS, confused_pairs, differential_descriptions
from wordsight.zeroshot.text_classifier import ZeroShotClassifier


# ------------------------------------------------------------------------------------ FuDD pairs
def test_confused_pairs_count_top2_co_occurrence():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(5), size=400)
    got = confused_pairs(p, top=4, min_share=0.0)
    # independent count: the two largest probabilities of every row, as a sorted pair
    counts = Counter(tuple(sorted(int(j) for j in np.argsort(-row)[:2])) for row in p)
    want = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:4]
    assert got == [(a, b, n) for (a, b), n in want]
    assert sum(n for *_, n in confused_pairs(p, top=100, min_share=0.0)) == 400


def test_confused_pairs_constructed_matrix_and_min_share():
    p = np.array([[0.5, 0.4, 0.1, 0.0],   # (0, 1)
                  [0.4, 0.5, 0.1, 0.0],   # (0, 1)
                  [0.1, 0.5, 0.0, 0.4],   # (1, 3)
                  [0.0, 0.1, 0.5, 0.4],   # (2, 3)
                  [0.0, 0.1, 0.4, 0.5],   # (2, 3)
                  [0.6, 0.1, 0.3, 0.0]])  # (0, 2)
    assert confused_pairs(p, ["a", "b", "c", "d"], top=10, min_share=0.0) == [(0, 1, 2), (2, 3, 2), (0, 2, 1),
                                                                              (1, 3, 1)]
    assert confused_pairs(p, top=10, min_share=0.3) == [(0, 1, 2), (2, 3, 2)]  # each pair >= 2 of 6 images
    assert confused_pairs(p, top=1, min_share=0.0) == [(0, 1, 2)]
    assert confused_pairs(np.zeros((0, 3))) == []
    with pytest.raises(ValueError, match="3 classes but 4"):
        confused_pairs(p, ["a", "b", "c"])


# ------------------------------------------------------------------------- FuDD answers (LLM)
class Recorder:
    """A backend that answers each prompt with a sentence naming it, and records what it was asked."""

    name = "recorder"

    def __init__(self):
        self.asked = []

    def describe(self):
        return "recorder:v1"

    def generate(self, prompts, max_new_tokens=60, temperature=0.7, seed=0, system=None):
        self.asked += prompts
        return [f"It differs as asked in {p[:60]}. Second sentence." for p in prompts]


def test_differential_descriptions_both_directions_cached():
    classes = ["T-shirt/top", "Shirt", "Bag"]
    rec = Recorder()
    got = differential_descriptions(classes, [(0, 1, 12)], rec, k=2)
    assert len(rec.asked) == 4  # 1 pair x 2 directions x k=2
    assert rec.asked[0] == FUDD_PROMPTS[0].format(a="t-shirt or top", b="shirt")
    assert rec.asked[3] == FUDD_PROMPTS[1].format(a="shirt", b="t-shirt or top")
    assert [e["source"] for e in got["T-shirt/top"]] == ["fudd:Shirt", "fudd:Shirt"]
    assert [e["source"] for e in got["Shirt"]] == ["fudd:T-shirt/top"] * 2 and got["Bag"] == []
    assert got["Shirt"][0]["text"].endswith(".") and "Second" not in got["Shirt"][0]["text"]  # first sentence
    again = differential_descriptions(classes, [(0, 1, 12)], rec, k=2)
    assert again == got and len(rec.asked) == 4  # answers read back from the disk cache
    differential_descriptions(classes, [(0, 2, 3)], rec, k=1)
    assert len(rec.asked) == 6  # a new pair asks only its own questions


# ----------------------------------------------------------------------------------- selection
def _two_class_images(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    X = np.zeros((n, 3))
    X[y == 0, 0], X[y == 1, 1] = 1.0, 1.0
    X += rng.normal(0, 0.3, size=X.shape)  # the third axis is noise shared by both classes
    return X, y


def test_separation_scores_match_a_direct_d_prime():
    X, y = _two_class_images()
    E = np.eye(3)[[0, 2, 1]]           # class 0: "good" (axis 0) and "noise" (axis 2); class 1: axis 1
    owner = np.array([0, 0, 1])
    got = separation_scores(E, owner, X, y)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    for t, c in enumerate(owner):
        s = Xn @ E[t]
        assert got[t] == pytest.approx((s[y == c].mean() - s[y != c].mean()) / s.std(), rel=1e-5)
    # soft targets that are one-hot give the same scores; two identical ways average to the same
    assert np.allclose(separation_scores(E, owner, [X, X], np.eye(2)[y]), got)
    assert got[0] > 1.5 and abs(got[1]) < 0.3 and got[2] > 1.5


def test_selection_keeps_the_discriminative_text_and_drops_the_other():
    X, y = _two_class_images()
    E = np.eye(3)[[0, 2, 1]]
    owner = np.array([0, 0, 1])
    w = selection_weights(separation_scores(E, owner, X, y), owner)
    assert w.tolist() == [1.0, 0.0, 1.0]
    assert selection_weights([-1.0, -2.0, 0.5], [0, 0, 1]).tolist() == [1.0, 0.0, 1.0]  # best text always kept
    assert selection_weights([1.0, 0.69, 0.71], [0, 0, 0], keep=0.7).tolist() == [1.0, 0.0, 1.0]


# ---------------------------------------------------------------------------- weighted texts
def test_weights_scale_the_class_mean_and_zero_drops(counting_encoder, tmp_path):
    from wordsight._util.numerics import l2_normalize
    from wordsight.text._text import embed_texts

    enc = counting_encoder(dim=16)
    desc = {"a": [{"text": "first text", "weight": 1.0}, {"text": "second text", "weight": 0.25},
                  {"text": "dropped text", "weight": 0}],
            "b": ["third text"]}
    zs = ZeroShotClassifier(["a", "b"], descriptions=desc, text_model=enc, include_name=False, llm="none").fit()
    assert zs.class_texts_ == {"a": ["first text", "second text"], "b": ["third text"]}
    e = embed_texts(["first text", "second text", "third text"], enc)
    want = l2_normalize(np.stack([(e[0] + 0.25 * e[1]) / 1.25, e[2]]))
    assert np.allclose(zs.class_embeddings_, want, atol=1e-6)
    plain = ZeroShotClassifier(["a", "b"], descriptions={"a": ["first text", "second text"], "b": ["third text"]},
                               text_model=enc, include_name=False, llm="none").fit()
    assert not np.allclose(plain.class_embeddings_[0], zs.class_embeddings_[0], atol=1e-3)
    zs.save(tmp_path / "zs")
    meta = json.loads((tmp_path / "zs" / "zeroshot.json").read_text())
    assert meta["class_text_weights"] == {"a": [1.0, 0.25], "b": [1.0]}


# ---------------------------------------------------------------------------------- the verb
def test_describe_classes_verb_writes_an_editable_file_that_zeroshot_reads(fashion_folder, tiny_clip_dir, tmp_path,
                                                                              capsys):
    out = tmp_path / "classes.json"
    classes = "Sandal,Bag,Coat"
    start = tmp_path / "mine.json"
    start.write_text(json.dumps({"Sandal": ["an open shoe with straps"], "Bag": ["a handbag"],
                                 "Coat": ["a long coat"]}))
    rec_dir = fashion_folder / "train"
    images = tmp_path / "imgs"
    images.mkdir()
    for c in classes.split(","):
        (images / c).symlink_to(rec_dir / c)
    rc = main(["describe-classes", classes, "--images", str(images), "--from", str(start), "--llm", "none",
               "--model", f"clip:{tiny_clip_dir}", "--out", str(out), "--quiet"])
    assert rc == 0
    data = json.loads(out.read_text())
    prov = data.pop("_provenance")
    assert list(data) == ["Sandal", "Bag", "Coat"]
    assert prov["selection"] == "labels" and prov["images"] == 18 and prov["texts"] == 3 * 10
    for c, entries in data.items():
        assert [e["source"] for e in entries] == ["name"] + ["template"] * 8 + ["user"]
        scores = [e["score"] for e in entries]
        best = max(scores)
        # the file explains itself: weight 1 exactly where the score clears the rule
        assert [e["weight"] for e in entries] == [1.0 if (s > 0 and s >= 0.7 * best) or s == best else 0.0
                                                  for s in scores]
    assert prov["kept"] == sum(e["weight"] > 0 for v in data.values() for e in v)
    assert "texts kept (selection: labels" in capsys.readouterr().err
    rc = main(["zeroshot", str(images), "--classes", classes, "--class-descriptions", str(out), "--llm", "none",
               "--model", f"clip:{tiny_clip_dir}", "--quiet"])
    assert rc == 0 and "accuracy on 18 labelled image(s)" in capsys.readouterr().err


def test_describe_classes_refines_the_pairs_the_pipeline_confuses(fashion_folder, tiny_clip_dir):
    from wordsight.zeroshot.pipeline import ZeroShotPipeline
    from wordsight.zeroshot.refine import base_entries, describe_classes

    classes = ["Sandal", "Bag", "Coat", "Trouser"]
    images = [str(p) for c in classes for p in sorted((fashion_folder / "train" / c).glob("*.png"))]
    start = {"Sandal": ["an open shoe"], "Bag": ["a handbag"], "Coat": ["a long coat"], "Trouser": ["long pants"]}
    rec = Recorder()

    def pipeline():
        return ZeroShotPipeline(classes, encoder=f"clip:{tiny_clip_dir}", method="descriptions")

    pool, prov = describe_classes(classes, images, descriptions=start, llm=rec, pairs=2, fudd_k=1, select="pseudo",
                                  pipeline=pipeline())
    # the same pairs, found independently from the pipeline fitted on the texts before refinement
    zs = pipeline()
    fs = zs.fit(images).read(images)
    zs.descriptions = base_entries(classes, start)
    proba = np.exp(zs.fit(images).log_proba_reading(ZeroShotPipeline.reading(fs)))
    want = confused_pairs(proba, top=2)
    assert prov["pairs"] == [[classes[a], classes[b], n] for a, b, n in want] and len(rec.asked) == 2 * len(want)
    for a, b, _ in want:
        assert [e["source"] for e in pool[classes[a]]].count(f"fudd:{classes[b]}") == 1
        assert [e["source"] for e in pool[classes[b]]].count(f"fudd:{classes[a]}") == 1
    assert prov["steps"] == ["names", "templates", "given", "fudd", "select:pseudo"] and prov["images"] == 24
    assert all(any(e["weight"] == 1.0 for e in v) for v in pool.values())


def test_base_entries_ask_the_llm_when_no_file_is_given_and_labels_are_needed_for_label_selection():
    from wordsight.zeroshot.refine import base_entries, describe_classes

    rec = Recorder()
    pool = base_entries(["cat", "dog"], llm=rec, k=2)
    assert [e["source"] for e in pool["cat"]] == ["name"] + ["template"] * 8 + ["llm", "llm"]
    assert pool["cat"][0] == {"text": "cat", "weight": 1.0, "source": "name"} and len(rec.asked) == 4
    assert base_entries(["cat", "dog"], {"cat": ["Cat"], "dog": []}, templates=False) == {
        "cat": [{"text": "cat", "weight": 1.0, "source": "name"}],  # "Cat" repeats the name: kept once
        "dog": [{"text": "dog", "weight": 1.0, "source": "name"}]}
    reading = {"embedding": np.ones((4, 3))}
    with pytest.raises(ValueError, match="needs images labelled"):
        describe_classes(["cat", "dog"], reading=reading, descriptions={"cat": [], "dog": []}, llm="none",
                         select="labels")
