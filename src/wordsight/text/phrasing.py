"""Words shown to people: text cut at a clause boundary, never mid-word.

:func:`shorten` is the one place where a description is made to fit a length: it cuts at the
last clause boundary that fits (a sentence end, a semicolon or colon, a comma, " and ", " or ", a
dash, an opening parenthesis; the CJK full stop and commas too),
else at the last word boundary, and marks the cut with an ellipsis. Nothing else in wordsight
truncates text shown to a reader.
"""
from __future__ import annotations

import re
import unicodedata

ELLIPSIS = "…"
# Where a clause ends: the boundary is the start of the match, and the text before it is kept.
_CLAUSE = re.compile(r"[.!?;:,](?=\s)|[。！？；：、，]|\s(?:and|or|but|while|which|with)\s|\s[-–—]\s|\s\(")
# Words that leave a phrase hanging when they end it ("worn over an").
_DANGLING = frozenset("a an the of with and or but in into to on onto over under around through across between "
                      "about like than by that its their for from at as while which".split())


def _clean_end(text: str) -> str:
    """``text`` without trailing spaces, punctuation that opens or joins, and dangling words."""
    words = text.rstrip(" ,;:-–—(").split(" ")
    while len(words) > 1 and words[-1].lower() in _DANGLING:
        words.pop()
    return " ".join(words).rstrip(" ,;:-–—(")


def _safe_cut(text: str, at: int) -> int:
    """``at`` moved left off combining marks, so that a letter keeps its accents."""
    while at > 0 and unicodedata.combining(text[at]):
        at -= 1
    return at


def shorten(text: str | None, budget: int) -> str:
    """``text`` (whitespace collapsed) in at most ``budget`` characters.

    Text that fits is returned whole, with no ellipsis. Otherwise it is cut at the last clause
    boundary that leaves room for the ellipsis; with none, at the last space; a single word longer
    than the budget is cut inside (the only mid-word cut, so that the length stays bounded).
    Dangling words ("of", "an", ...) and trailing punctuation are dropped before the ellipsis.
    """
    if budget < 2:
        raise ValueError(f"budget must be at least 2 characters, not {budget}")
    text = " ".join(str(text or "").split())
    if len(text) <= budget:
        return text
    room = budget - len(ELLIPSIS)
    # a boundary starting at ``room`` counts; " which " (the longest) needs 7 more characters to match
    ends = [m.start() for m in _CLAUSE.finditer(text[: room + 8]) if 0 < m.start() <= room]
    for end in reversed(ends):
        kept = _clean_end(text[:end])
        if kept:
            return kept + ELLIPSIS
    space = text.rfind(" ", 0, room + 1)
    if space > 0:
        kept = _clean_end(text[:space])
        if kept:
            return kept + ELLIPSIS
    return text[: _safe_cut(text, room)].rstrip() + ELLIPSIS


# Characters a concept's gist may take: with its name and probability it fits one 80-column line.
GIST_CHARS = 60


def short_description(text: str | None, budget: int = GIST_CHARS) -> str:
    """The gist of a description: its first sentence, cut to ``budget`` characters at a clause
    boundary (:func:`~wordsight.text.phrasing.shorten`, never mid-word), starting lower-case
    (acronyms and proper names in capitals keep their case)."""
    if not text:
        return ""
    first = re.split(r"(?<=[.!?])\s", " ".join(text.split()), maxsplit=1)[0].rstrip(".!? ")
    gist = shorten(first, budget)
    if gist and not (len(gist.split()[0]) > 1 and gist.split()[0].isupper()):
        gist = gist[:1].lower() + gist[1:]
    return gist


# ------------------------------------------------------------------ which concepts to list
def no_concept(bank=None) -> str:
    """What a description says when no concept's probability clears the threshold."""
    vocabulary = getattr(bank, "vocabulary", "") if bank is not None else "ImageNet"
    return f"no {vocabulary} concept fits well" if vocabulary else "no concept fits well"


# ------------------------------------------------------------------ a trained model's classes first
# Classes after the predicted one are named while their probability is at least this: one chance
# in five is worth a reader's attention; below it the class stays in the top-k list only.
RUNNER_UP_PROBABILITY = 0.2
MAX_LEAD_CLASSES = 3


def _first_description(descriptions, cls) -> str | None:
    if not isinstance(descriptions, dict):
        return None
    d = descriptions.get(cls, descriptions.get(str(cls)))
    if isinstance(d, (list, tuple)):
        d = next((x for x in d if isinstance(x, str) and x.strip()), None)
    return d if isinstance(d, str) and d.strip() else None


def class_lead(proba, classes, descriptions: dict | list | None = None) -> list[str]:
    """Per image, the classes that match it best, by the model's own probabilities (what
    ``predict_proba`` reports): ``matches: Sandal (0.93), an open shoe held by straps; Sneaker
    (0.21)``. The predicted class always; the next ones while their probability is at least
    :data:`RUNNER_UP_PROBABILITY` (at most :data:`MAX_LEAD_CLASSES`). A class with a description
    is followed by its gist: ``descriptions`` is ``{class: text or [texts]}`` (the first text is
    used), or one such dict per image (the text chosen for that image)."""
    import numpy as np

    P = np.asarray(proba, dtype=np.float64)
    if P.ndim != 2 or P.shape[1] != len(classes):
        raise ValueError(f"probabilities must be (N, {len(classes)}), got shape {P.shape}")
    per_image = descriptions if isinstance(descriptions, list) else [descriptions] * len(P)
    if len(per_image) != len(P):
        raise ValueError(f"{len(P)} probability rows but descriptions for {len(per_image)} images")
    lines = []
    for row, descriptions in zip(P, per_image):
        order = np.argsort(-row, kind="stable")[:MAX_LEAD_CLASSES]
        parts = []
        for rank, j in enumerate(order):
            if rank and row[j] < RUNNER_UP_PROBABILITY:
                break
            gist = short_description(_first_description(descriptions, classes[j]))
            parts.append(f"{classes[j]} ({row[j]:.2f})" + (f", {gist}" if gist else ""))
        lines.append("matches: " + "; ".join(parts))
    return lines


def lead_with_classes(proba, classes, concept_lines, descriptions: dict | list | None = None) -> list[str]:
    """A trained model's descriptions: :func:`class_lead`, then the concepts line (or its
    'no concept fits well'), one sentence each."""
    lead = class_lead(proba, classes, descriptions)
    if len(lead) != len(concept_lines):
        raise ValueError(f"{len(lead)} probability rows but {len(concept_lines)} concept lines")
    return [f"{a}. {b}" if b else a for a, b in zip(lead, concept_lines)]


# ------------------------------------------------------------------ the measured thresholds
# The probability an ImageNet concept needs before a description lists it, per packaged encoder:
# the smallest threshold at which at most 10% of 466 images where no ImageNet concept applies
# (noise, flat colours, gradients, random silhouettes, textures and scientific images, sklearn
# digits, 25-px faces) list one. Measured 2026-11-30 by benchmarks/concept_threshold.py: at these
# thresholds 40% (efficientnet-lite0) and 60% (mobilenetv2) of 40 views of 10 real photos keep a
# right concept, 9.9% and 9.4% of the none-apply images list one. The probability does not flag
# Fashion-MNIST's wrong readings (AUROC 0.61 and 0.73): about 47% of its test images still list a
# concept, right about one time in nine (lite0); a trained model's words lead with its classes.
CONCEPT_THRESHOLDS: dict[str, float] = {"efficientnet-lite0": 0.43, "mobilenetv2": 0.45}


def concept_threshold(encoder: str | None) -> float:
    """The probability an ImageNet concept of ``encoder`` needs before it is listed: the measured
    :data:`CONCEPT_THRESHOLDS`, the strictest of them for an encoder that was not measured."""
    return CONCEPT_THRESHOLDS.get(encoder or "", max(CONCEPT_THRESHOLDS.values(), default=0.0))
