"""Zero-shot tags: each tag scored on its own against a "none" option, through the zero-shot
pipeline (the same ways into the text space, the same class texts).

A :class:`~.pipeline.ZeroShotPipeline` is built over the tags plus :data:`NONE` (the texts of an
empty scene). For each way, the scaled cosine of the image with each tag's text and with the
"none" text gives the tag's log-odds against "none", ``scale * (cos_tag - cos_none)``: a softmax
over the pair {tag, none}, which no other tag enters (so the tags are independent, as the
multi-label task's outputs are). The ways' log-odds are averaged; the tag's probability is their
sigmoid, and a tag is said present at 0.5 (more likely than "none"). An image with no tag above
0.5 answers "none".
"""
from __future__ import annotations

import numpy as np

from .._util.numerics import sigmoid

NONE = "nothing"  # the "none" option's class name (its texts: the templates over an empty scene)
THRESHOLD = 0.5


def tag_pipeline(tags, **options):
    """The :class:`~.pipeline.ZeroShotPipeline` over ``tags`` and the "none" option."""
    from .pipeline import ZeroShotPipeline

    if NONE in tags:
        raise ValueError(f"{NONE!r} is the 'none' option of --multilabel: rename that tag")
    return ZeroShotPipeline([*tags, NONE], **options)


def tag_log_odds(pipeline, reading: dict) -> np.ndarray:
    """(N, tags) log-odds of each tag against "none", averaged over the pipeline's ways."""
    total = 0.0
    for way, zs in pipeline.ways_.items():
        z = zs.decision_function(pipeline.vectors(reading, way)) * zs.scale_
        total = total + (z[:, :-1] - z[:, -1:])
    return total / len(pipeline.ways_)


def tag_probabilities(pipeline, X) -> tuple[np.ndarray, object]:
    """Independent tag probabilities (N, tags) of images ``X`` and their FeatureSet."""
    fs = pipeline.read(X)
    if not fs.samples:
        return np.zeros((0, len(pipeline.classes) - 1)), fs
    return sigmoid(tag_log_odds(pipeline, pipeline.reading(fs))), fs


def tag_records(paths, labels, tags, proba, top_k: int, texts=None) -> list:
    """Prediction records: ``predicted`` the tags at or above :data:`THRESHOLD` (``["none"]``
    when no tag is), ``top_k`` the most probable tags, ``label`` the true label set if given."""
    from ..io.records import Prediction

    k = min(top_k, len(tags))
    texts = texts if texts is not None else [None] * len(proba)
    out = []
    for path, label, p, text in zip(paths, labels, np.asarray(proba, float), texts):
        order = np.argsort(-p, kind="stable")[:k]
        found = [str(t) for t, q in zip(tags, p) if q >= THRESHOLD] or ["none"]
        out.append(Prediction(path, None if label is None else list(label) if isinstance(label, tuple) else label,
                              found, [(str(tags[j]), float(p[j])) for j in order], text))
    return out
