"""Words shown to people: cut at a clause boundary, concepts listed only above the measured
threshold, a trained model's classes first."""
from __future__ import annotations

import numpy as np
import pytest

from wordsight.text.concepts import ConceptBank, short_description
from wordsight.text.phrasing import (
    CONCEPT_THRESHOLDS,
    class_lead,
    concept_threshold,
    lead_with_classes,
    no_concept,
    shorten,
)
from wordsight.text.semantic import describe

MUZZLE = ("A muzzle is a fitted restraint worn over an animal's snout, usually secured with straps around the "
          "head. It may be basket-like, cage-like, mesh, leather, fabric, or plastic.")


def test_text_that_fits_is_whole_and_has_no_ellipsis():
    assert shorten("an open shoe held by straps", 27) == "an open shoe held by straps"
    assert shorten("  an open\tshoe  ", 12) == "an open shoe"  # whitespace collapsed first
    assert shorten(None, 10) == "" and shorten("", 10) == ""


def test_cut_at_the_last_clause_boundary_that_fits():
    # the comma after "snout" is character 59: with the ellipsis that needs a budget of 59
    assert shorten(MUZZLE, 59) == "A muzzle is a fitted restraint worn over an animal's snout…"
    # one character less: no clause boundary fits -> the last word boundary
    assert shorten(MUZZLE, 58) == "A muzzle is a fitted restraint worn over an animal's…"
    # the sentence end fits: cut there, without its full stop
    head = "A muzzle is a fitted restraint worn over an animal's snout, usually secured with straps around the head"
    assert shorten(MUZZLE, len(head) + 1) == head + "…"
    assert shorten(MUZZLE, len(head)) == "A muzzle is a fitted restraint worn over an animal's snout, usually secured…"
    # " and " and " or " are boundaries too; the dangling words before them go
    assert shorten("a tall boot with a high shaft and a pointed toe or a rounded one", 40) == "a tall boot with a high shaft…"
    assert shorten("a tall boot with a high shaft and a pointed toe or a rounded one", 48) == \
        "a tall boot with a high shaft and a pointed toe…"
    assert shorten("red or blue or green or yellow", 21) == "red or blue or green…"
    assert shorten("red or blue or green or yellow", 20) == "red or blue…"
    assert shorten("a coat; warm and long", 12) == "a coat…"


def test_word_boundary_when_no_clause_fits_and_dangling_words_go():
    assert shorten("worn over an animal's snout usually", 25) == "worn over an animal's…"
    assert shorten("a device worn over the head", 19) == "a device worn…"  # not "a device worn over the"
    assert shorten("one two three four", 10) == "one two…"
    assert shorten("one two three four", 14) == "one two three…"


def test_a_single_long_word_is_bounded_and_unicode_is_whole_characters():
    long = "Donaudampfschifffahrtsgesellschaftskapitän"
    assert shorten(long, 12) == "Donaudampfs…" and len(shorten(long, 12)) == 12
    assert shorten(long * 50, 30) == long[:29] + "…"
    # a combining accent stays with its letter: "e" + U+0301 is never split
    assert shorten("cafe\u0301cafe\u0301cafe\u0301", 5) == "caf…"
    assert shorten("über die Straße, schnell", 18) == "über die Straße…"
    assert shorten("日本語のテキストです、とても長い", 11) == "日本語のテキストです…"  # the ideographic comma
    assert shorten("日本語のテキストです、とても長い", 10) == "日本語のテキストで…"  # no boundary: bounded
    with pytest.raises(ValueError, match="at least 2"):
        shorten("abc", 1)


def test_every_cut_fits_the_budget_and_never_ends_mid_word():
    words = MUZZLE.split()
    for budget in range(2, len(MUZZLE) + 5):
        out = shorten(MUZZLE, budget)
        assert len(out) <= budget
        if out != MUZZLE:
            assert out.endswith("…")
            kept = out[:-1].rstrip(",;:")
            last = kept.split()[-1] if kept.split() else ""
            # the last kept word is a whole word of the text (or the text's first word cut inside)
            assert last in {w.rstrip(",.;:") for w in words} or (len(kept.split()) == 1 and words[0].startswith(last))


def test_short_description_is_the_first_sentence_cut_at_a_clause():
    assert short_description(MUZZLE) == "a muzzle is a fitted restraint worn over an animal's snout…"
    assert short_description("A thick-bodied freshwater fish with a smooth body, usually olive. It has fins.") == \
        "a thick-bodied freshwater fish with a smooth body…"
    assert short_description("DVD player: a machine that plays discs") == "DVD player: a machine that plays discs"
    assert short_description(None) == ""


# ------------------------------------------------------------------ concepts above the threshold
@pytest.fixture()
def shoes():
    return ConceptBank.from_list(["sandal", "clog", "sneaker"],
                                 ["An open shoe held by straps across the toes and the heel, worn in summer.", None, "A shoe for sport."])


def test_the_measured_thresholds_are_the_benchmark_s():
    # benchmarks/concept_threshold.py, 2026-11-30 (docs/benchmarks.md, "Concept threshold")
    assert CONCEPT_THRESHOLDS == {"efficientnet-lite0": 0.43, "mobilenetv2": 0.45}
    assert concept_threshold("efficientnet-lite0") == 0.43 and concept_threshold("mobilenetv2") == 0.45
    assert concept_threshold("efficientnet-lite2") == 0.45  # not measured: the strictest measured one
    assert concept_threshold(None) == 0.45


def test_a_concept_is_listed_only_at_or_above_the_threshold(shoes):
    t = concept_threshold("efficientnet-lite0")
    p = np.array([[t, t - 1e-4, 1 - 2 * t + 1e-4],    # the sandal just clears it, the clog just misses
                  [0.30, 0.30, 0.40]])                 # nothing clears it
    assert describe(p, shoes, min_probability=t) == [
        "resembles: sandal (0.43), an open shoe held by straps across the toes and the heel…",
        "no concept fits well"]
    sandal = "an open shoe held by straps across the toes and the heel…"
    assert describe(p, shoes) == [  # without a threshold (own concept banks): the top three as before
        f"resembles: sandal (0.43), {sandal}; clog (0.43); sneaker (0.14), a shoe for sport",
        f"resembles: sneaker (0.40), a shoe for sport; sandal (0.30), {sandal}; clog (0.30)"]
    assert no_concept(ConceptBank.imagenet("minilm")) == "no ImageNet concept fits well"


# ------------------------------------------------------------------ a trained model's classes first
def test_class_lead_follows_the_model_s_probabilities():
    classes = ["Sandal", "Sneaker", "Bag", "Coat"]
    desc = {"Sandal": ["A light open shoe with straps across the toes and around the ankle, often worn in summer.",
                       "second"], "Bag": "A bag."}
    P = np.array([[0.60, 0.20, 0.1999, 0.0001],   # the runner-up at exactly 0.2 is named, 0.1999 is not
                  [0.05, 0.25, 0.30, 0.40]])       # three classes above 0.2: at most three are named
    assert class_lead(P, classes, desc) == [
        "matches: Sandal (0.60), a light open shoe with straps across the toes…; Sneaker (0.20)",
        "matches: Coat (0.40); Bag (0.30), a bag; Sneaker (0.25)"]
    assert class_lead(P[:1], classes) == ["matches: Sandal (0.60); Sneaker (0.20)"]
    assert lead_with_classes(P, classes, ["no ImageNet concept fits well", "resembles: clog (0.50)"]) == [
        "matches: Sandal (0.60); Sneaker (0.20). no ImageNet concept fits well",
        "matches: Coat (0.40); Bag (0.30); Sneaker (0.25). resembles: clog (0.50)"]
    per_image = [{"Sandal": "A sandal."}, {"Bag": ["A bag with handles."]}]  # texts chosen per image
    assert class_lead(P, classes, per_image) == ["matches: Sandal (0.60), a sandal; Sneaker (0.20)",
                                                 "matches: Coat (0.40); Bag (0.30), a bag with handles; Sneaker (0.25)"]
    with pytest.raises(ValueError, match="descriptions for 1 images"):
        class_lead(P, classes, per_image[:1])
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        class_lead(np.ones((2, 3)), classes)
