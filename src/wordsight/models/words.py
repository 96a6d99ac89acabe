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
    given = getattr(model, "class_descriptions", None)
    if isinstance(given, dict) or given is None:
        return given
    from ..language.descriptions import load_class_descriptions

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_class_descriptions(given, [str(c) for c in model.classes_], missing="empty")
    except (OSError, ValueError):
        return None  # the file moved away: the classes are named without their descriptions


def describe_images(model, blocks, proba=None) -> list[str | None]:
    """Per image of ``blocks``: its ImageNet concepts that clear the encoder's measured threshold
    (:func:`~wordsight.language.wording.concept_threshold`); with ``proba`` ((N, n_classes), the
    model's probabilities of these images) led by :func:`~wordsight.language.wording.class_lead`."""
    from ..language import describe
    from ..language.wording import concept_threshold, lead_with_classes

    if blocks is None:
        return []
    concepts = None
    if blocks.probs is not None:
        concepts = describe(blocks.probs, bank=model.concept_bank(),
                            min_probability=concept_threshold(blocks.probs_encoder))
    if proba is None or not hasattr(model, "classes_"):
        return concepts if concepts is not None else [None] * len(blocks)
    classes = [c.item() if isinstance(c, np.generic) else c for c in model.classes_]
    return lead_with_classes(proba, classes, concepts or [""] * len(proba), class_descriptions(model))
