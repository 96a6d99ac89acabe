"""A trained model's words: its best-matching classes first (by ``predict_proba``), then the
ImageNet concepts above the measured threshold; the same words from every library call."""
from __future__ import annotations

import json

import numpy as np
import pytest

from wordsight.estimator import Classifier
from wordsight.estimator.fusion import PriorFusion
from wordsight.estimator.heads import LogisticHead
from wordsight.text._text import embed_texts
from wordsight.text.concepts import ConceptBank, imagenet_concepts, short_description

SANDAL = ["A light open shoe held by straps across the toes and around the ankle, for warm days.",
          "A flat rubber flip-flop with a thong between the toes."]
GISTS = ["a light open shoe held by straps across the toes…", "a flat rubber flip-flop with a thong between the toes"]


@pytest.fixture(scope="module")
def fitted(fashion_blocks):
    train, _ = fashion_blocks
    return Classifier(fusion=PriorFusion(descriptions={"Sandal": SANDAL, "Bag": "A bag with handles."}, weight=0.0,
                                          method="names"),
                      head=LogisticHead(C=0.1)).fit(train)


def by_hand(clf, blocks) -> list[str]:
    """The words, rebuilt from predict_proba and the ImageNet probabilities with numpy alone."""
    P = clf.predict_proba(blocks)
    names, descs = imagenet_concepts()
    bank = ConceptBank.imagenet("minilm").embeddings
    sandal = embed_texts(SANDAL, "minilm")
    out = []
    for p, q in zip(P, blocks.probs):
        top10 = np.argsort(-q)[:10]  # ConSE: the top-10 concepts' embeddings, weighted, normalised
        v = (q[top10] / q[top10].sum()) @ bank[top10]
        nearest = int(np.argmax(sandal @ (v / np.linalg.norm(v))))
        gist = {"Sandal": GISTS[nearest], "Bag": "a bag with handles"}
        order = np.argsort(-p, kind="stable")
        lead = [order[0]] + [j for j in order[1:3] if p[j] >= 0.2]
        first = "; ".join(f"{clf.classes_[j]} ({p[j]:.2f})" + (f", {gist[clf.classes_[j]]}" if clf.classes_[j] in gist
                          else "") for j in lead)
        top = [j for j in np.argsort(-q)[:3] if q[j] >= 0.43]  # efficientnet-lite0's measured threshold
        words = [f"{names[j]} ({q[j]:.2f})" + (f", {short_description(descs[j])}" if descs[j] else "") for j in top]
        second = ("resembles: " + "; ".join(words)
                  if top else "no ImageNet concept fits well")
        out.append(f"matches: {first}. {second}")
    return out


def test_descriptions_lead_with_the_classes_then_the_confident_concepts(fitted, fashion_blocks):
    _, test = fashion_blocks
    texts = fitted.describe(test)
    assert texts == by_hand(fitted, test)
    assert len(texts) == 40
    # both cases occur on these 40 images: some list a concept, some say none fits
    assert any("resembles: " in t for t in texts) and any(t.endswith("no ImageNet concept fits well") for t in texts)
    sandals = [t for t in texts if t.startswith("matches: Sandal (")]
    assert sandals and all(any(f"), {g}" in t for g in GISTS) for t in sandals)
    records = fitted.predict_records(test, top_k=3)
    assert [r.description for r in records] == texts
    assert all(t.startswith(f"matches: {r.predicted} (") for t, r in zip(texts, records))


def test_descriptions_from_a_file_and_after_save_and_load(fitted, fashion_blocks, tmp_path):
    _, test = fashion_blocks
    path = tmp_path / "classes.json"
    path.write_text(json.dumps({"Sandal": SANDAL, "Bag": ["A bag with handles."]}))
    from_file = Classifier(fusion=PriorFusion(descriptions=str(path), weight=0.0, method="names"),
                           head=LogisticHead(C=0.1)).fit(fashion_blocks[0])
    assert from_file.describe(test) == fitted.describe(test)
    fitted.save(tmp_path / "model")
    assert Classifier.load(tmp_path / "model").describe(test) == fitted.describe(test)
    path.unlink()  # the file moved away: classes are named without their descriptions, nothing fails
    texts = from_file.describe(test)
    assert all(g not in t for g in GISTS for t in texts) and all(t.startswith("matches: ") for t in texts)
