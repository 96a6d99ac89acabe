"""The report's paired-text rows: image / own text / both, when the images come with their own
texts (a manifest's ``text`` column; see :mod:`wordsight.estimator.paired_text`).

"image" is the report's image row (fusion ``image``). "own text" is the text head of a ``late``
model refitted on the same training images, scored on the test images that have a text (the
row's name says how many). "both" are the ``paired`` and ``late`` models on every test image, an
image without text decided by its image alone, as ``predict_proba`` does.
"""
from __future__ import annotations

import time

import numpy as np
from sklearn.base import clone

from .._util.numerics import softmax
from .metrics import classification_metrics


def _has_texts(blocks) -> int:
    return sum(1 for s in blocks.samples if isinstance(getattr(s, "text", None), str) and s.text.strip())


def paired_ablation(clf, train_blocks, test_blocks, y, say=lambda msg: None) -> list[dict]:
    """Ablation rows (own text, both: paired, both: late); none when train or test has no text."""
    n_text = _has_texts(test_blocks)
    if not n_text or not _has_texts(train_blocks):
        return []
    rows = []
    for fusion in ("late", "paired"):
        try:
            t = time.time()
            v = clf if clf.fusion_name == fusion else clone(clf).set_params(fusion=fusion).fit(train_blocks)
            F = v.featurize(test_blocks)
            if fusion == "late":
                rows.append(_own_text_row(v, F, y, n_text, len(test_blocks)))
            m = classification_metrics(y, v.proba_featurized(F), v.classes_)
            rows.append({"name": f"image + own text ({fusion})", "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
                         "ece": m["ece"], "prior_weight": None})
            say(f"ablation image + own text ({fusion}): {m['accuracy']:.4f} ({time.time() - t:.1f}s)")
        except Exception as e:
            rows.append({"name": f"image + own text ({fusion})", "error": f"{type(e).__name__}: {e}"})
    return rows


def _own_text_row(late, F, y, n_text: int, n: int) -> dict:
    """The ``late`` model's text head alone, on the test images that have a text."""
    from ..estimator.paired_text import has_text

    paired = late.state_.paired
    keep = has_text(F.matrix, paired.split)
    P = softmax(paired.head.logits(np.asarray(F.matrix[keep, paired.split:], np.float64)))
    m = classification_metrics([v for v, k in zip(y, keep) if k], P, late.classes_)
    return {"name": f"own text ({n_text} of {n} test images have one)", "accuracy": m["accuracy"],
            "macro_f1": m["macro_f1"], "ece": m["ece"], "prior_weight": None}
