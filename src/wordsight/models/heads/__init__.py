"""Classifier heads, a small registry: one name per head, each head's maths in its own module.

``make_head("logistic", C=..., class_weight=...)`` builds one; every head offers ``fit``,
``logits`` (numpy), ``to_torch()`` (which the ONNX export traces) and ``state()`` /
``from_state()`` of plain arrays. Nothing outside this package branches on a
head's name.
"""
from __future__ import annotations

from .base import Head, class_weights
from .forest import RandomForestHead
from .knn import KNNHead
from .linear import DEFAULT_C_GRID, LinearHead, LogisticHead, SVMHead, fit_temperature
from .mlp import MLPHead

HEAD_CLASSES: dict[str, type[Head]] = {c.name: c for c in (LogisticHead, SVMHead, MLPHead, KNNHead, RandomForestHead)}
HEADS = tuple(HEAD_CLASSES)


def head_class(name: str) -> type[Head]:
    """The head class registered as ``name``."""
    if name not in HEAD_CLASSES:
        raise ValueError(f"unknown head {name!r}: choose one of {', '.join(HEADS)}")
    return HEAD_CLASSES[name]


def make_head(name: str, **params) -> Head:
    """An unfitted head: ``make_head("svm", C=0.1, class_weight="balanced")``."""
    return head_class(name)(**params)


__all__ = ["DEFAULT_C_GRID", "HEADS", "HEAD_CLASSES", "Head", "KNNHead", "LinearHead", "LogisticHead", "MLPHead",
           "RandomForestHead", "SVMHead", "class_weights", "fit_temperature", "head_class",
           "make_head"]
