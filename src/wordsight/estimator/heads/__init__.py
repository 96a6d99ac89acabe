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
from .mil import MILHead
from .mlp import MLPHead

HEAD_CLASSES: dict[str, type[Head]] = {c.name: c for c in (LogisticHead, SVMHead, MLPHead, KNNHead, RandomForestHead,
                                                           MILHead)}
HEADS = tuple(HEAD_CLASSES)


def head_class(name: str) -> type[Head]:
    """The head class registered as ``name``."""
    if name not in HEAD_CLASSES:
        raise ValueError(f"unknown head {name!r}: choose one of {', '.join(HEADS)}")
    return HEAD_CLASSES[name]


def make_head(name: str, **params) -> Head:
    """An unfitted head: ``make_head("svm", C=0.1, class_weight="balanced")`` (an option the head
    does not take is a TypeError)."""
    return head_class(name)(**params)


def head_taking(name: str, **options) -> Head:
    """The head registered as ``name`` with those of ``options`` it takes, the others left out
    (options meant for the heads that have them: the command line's ``--C``, a model's seed)."""
    cls = head_class(name)
    return cls(**{k: v for k, v in options.items() if k in cls._get_param_names()})


__all__ = ["DEFAULT_C_GRID", "HEADS", "HEAD_CLASSES", "Head", "KNNHead", "LinearHead", "LogisticHead", "MILHead", "MLPHead",
           "RandomForestHead", "SVMHead", "class_weights", "fit_temperature", "head_class",
           "head_taking", "make_head"]
