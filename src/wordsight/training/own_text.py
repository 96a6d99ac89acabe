"""``fit``'s default when the images come with their own texts (a manifest's ``text`` column):
which fusion reads them, chosen on the training images.

The candidates are the fusion ``fit`` would use without texts (``prior`` or ``image``,
:func:`~wordsight.estimator.classifier.default_fusion`) and the two that read each image's own
text, ``paired`` and ``late`` (:mod:`wordsight.estimator.fusion.paired`). Each is fitted on
stratified folds of the training images and scored on the held-out fold (accuracy, each image
read with its own text as ``predict`` reads it); the best text fusion is used unless the fusion
without texts does better, and the line that says so names the scores. Texts that cover fewer
than two classes cannot train a text head: they are not used, and the line says which classes
have them. With one image of some class there is no held-out image: ``paired`` is used, and the
line says it was not compared.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

TEXT_FUSIONS = ("paired", "late")
MAX_FOLDS = 5


def _has_text(sample) -> bool:
    text = getattr(sample, "text", None)
    return isinstance(text, str) and bool(text.strip())


def text_coverage(samples) -> tuple[list[str], list[str], int]:
    """(classes with a text on some image, classes without, images with a text)."""
    labelled = [s for s in samples if s.label is not None]
    classes = sorted({str(s.label) for s in labelled})
    covered = sorted({str(s.label) for s in labelled if _has_text(s)})
    return covered, [c for c in classes if c not in covered], sum(_has_text(s) for s in labelled)


def _folds(labels, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedKFold

    counts = Counter(labels)
    n_folds = min(MAX_FOLDS, min(counts.values()))
    if n_folds < 2:
        return []
    y = np.asarray(labels, dtype=object).astype(str)
    return list(StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def held_out_accuracy(make_model, blocks, folds) -> float:
    """Mean held-out accuracy of ``make_model()`` over ``folds`` of ``blocks``."""
    y = np.asarray(blocks.labels, dtype=object)
    right = 0
    for train, held in folds:
        model = make_model().fit(blocks.take(train))
        right += int(np.sum(model.predict(blocks.take(held)) == y[held]))
    return right / sum(len(h) for _, h in folds)


def choose_text_fusion(make_model, blocks, base: str, seed: int = 0) -> tuple[str, str]:
    """(fusion name, the line that says what was done with the texts and why).

    ``make_model(name)`` returns an unfitted Classifier with fusion ``name``; ``blocks`` the
    training images' FeatureBlocks (their samples carry the texts); ``base`` the fusion without
    texts."""
    covered, uncovered, n_text = text_coverage(blocks.samples)
    n = sum(1 for s in blocks.samples if s.label is not None)
    where = f"{n_text} of {n} training images have a text"
    missing = f"; classes without one: {', '.join(uncovered)} (their images are read by the image alone)" \
        if uncovered and covered else ""
    if len(covered) < 2:
        return base, (f"texts not used: {where}, covering {len(covered)} class(es) "
                      f"({', '.join(covered) or 'none'}); a text head needs two or more")
    folds = _folds([s.label for s in blocks.samples], seed)
    if not folds:
        return "paired", (f"texts used (fusion paired): {where}{missing}; one image of some class, so no "
                          "held-out images to compare fusions on")
    scores = {name: held_out_accuracy(lambda name=name: make_model(name), blocks, folds)
              for name in (base, *TEXT_FUSIONS)}
    shown = ", ".join(f"{name} {acc:.1%}" for name, acc in scores.items())
    best_text = max(TEXT_FUSIONS, key=lambda name: scores[name])  # ties: paired, the first
    if scores[best_text] < scores[base]:
        return base, (f"texts not used: {where}, and on {len(folds)} held-out folds of the training images "
                      f"the images alone did better ({shown})")
    return best_text, (f"texts used (fusion {best_text}): {where}{missing}; held-out accuracy on "
                       f"{len(folds)} folds of the training images: {shown}")
