"""Prediction records of a multi-label model: the label set, and the labels with probabilities."""
from __future__ import annotations

import numpy as np


def label_set_records(paths, labels, classes, proba, top_k, texts, sets) -> list:
    """One :class:`~wordsight.io.records.Prediction` per row of ``proba`` (independent
    probabilities): ``predicted`` the row's label set (a list, from ``sets``), ``top_k`` its
    ``top_k`` most probable labels (ties: ``classes`` order), the true label set as ``label``."""
    from ...io.records import Prediction, _py

    classes = list(classes)
    k = min(top_k, len(classes))
    texts = texts if texts is not None else [None] * len(proba)
    out = []
    for path, label, p, text, chosen in zip(paths, labels, np.asarray(proba, float), texts, sets):
        order = np.argsort(-p, kind="stable")[:k]
        out.append(Prediction(path, None if label is None else list(label), list(chosen or ()),
                              [(_py(classes[j]), float(p[j])) for j in order], text))
    return out
