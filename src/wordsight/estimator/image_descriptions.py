"""A fitted model's images in words: the classes that match best, then the concepts.

One function, :func:`describe_images`, makes every description a trained model reports
(``Classifier.describe``, ``predict_records``, so ``wordsight predict``, ``/v1/predict`` and the
web page), from the probabilities ``predict_proba`` computes: the same words on every path.
"""
from __future__ import annotations

import warnings

import numpy as np


def class_descriptions(model) -> dict | None:
    """``{class: text or [texts]}`` the model was given (a dict, or a JSON file still readable),
    else None."""
    given = getattr(model.fusion_, "descriptions", None)
    if isinstance(given, dict) or given is None:
        return given
    from ..text.descriptions import load_class_descriptions

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_class_descriptions(given, [str(c) for c in model.classes_], missing="empty")
    except (OSError, ValueError):
        return None  # the file moved away: the classes are named without their descriptions


def best_descriptions(descriptions: dict | None, semantic: np.ndarray | None, text_model) -> dict | list | None:
    """Per image, ``{class: the class description nearest to the image}``: cosine similarity of the
    descriptions' text embeddings to the image's ConSE semantic vector (the ranking of
    ``wordsight.explain``'s descriptors). With one description per class, or no semantic vectors,
    the descriptions as given."""
    if not descriptions or semantic is None:
        return descriptions
    texts = {c: [d] if isinstance(d, str) else [x for x in (d or []) if isinstance(x, str) and x.strip()]
             for c, d in descriptions.items()}
    several = {c: t for c, t in texts.items() if len(t) > 1}
    if not several:
        return descriptions
    from ..text._text import embed_texts

    flat = [x for t in several.values() for x in t]
    E = embed_texts(flat, text_model)
    scores, start, best = semantic @ E.T, 0, {}
    for c, t in several.items():
        best[c] = np.argmax(scores[:, start:start + len(t)], axis=1)
        start += len(t)
    return [{c: several[c][best[c][i]] if c in several else d for c, d in descriptions.items()}
            for i in range(len(semantic))]


def describe_images(model, blocks, proba=None) -> list[str | None]:
    """Per image of ``blocks``: its ImageNet concepts that clear the encoder's measured threshold
    (:func:`~wordsight.text.phrasing.concept_threshold`); with ``proba`` ((N, n_classes), the
    model's probabilities of these images) led by :func:`~wordsight.text.phrasing.class_lead`,
    each class with its description nearest to the image (:func:`best_descriptions`)."""
    from ..text import describe
    from ..text.phrasing import concept_threshold

    if blocks is None:
        return []
    concepts = None
    if blocks.probs is not None:
        concepts = describe(blocks.probs, bank=model.concept_bank(),
                            min_probability=concept_threshold(blocks.probs_encoder))
    if proba is None or not hasattr(model, "classes_"):
        return concepts if concepts is not None else [None] * len(blocks)
    classes = [c.item() if isinstance(c, np.generic) else c for c in model.classes_]
    descriptions = class_descriptions(model)
    if descriptions and blocks.probs is not None:
        descriptions = best_descriptions(descriptions, model.semantic_vectors(blocks), model.concept_bank().text_model)
    return model.task_.words(proba, classes, concepts or [""] * len(proba), descriptions)
