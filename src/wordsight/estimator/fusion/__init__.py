"""Fusions, a small registry: one name per fusion, each fusion's blocks and behaviour in its module.

``image`` (image blocks), ``text`` (the ConSE text block), ``concat`` (both) in :mod:`.blocks`;
``prior`` (image blocks plus the zero-shot language prior mixed into the head's logits) in
:mod:`.prior`; ``paired`` and ``late`` (image blocks and each image's own text) in :mod:`.paired`.
``make_fusion("prior")`` builds one with its defaults; a :class:`Fusion` object is used as given.
Nothing outside this package branches on a fusion's name.
"""
from __future__ import annotations

from .base import Fusion
from .concat import ConcatFusion, ImageFusion, TextFusion
from .paired import LateFusion, PairedFusion
from .prior import PriorFusion

FUSION_CLASSES: dict[str, type[Fusion]] = {c.name: c for c in (ImageFusion, TextFusion, ConcatFusion, PriorFusion,
                                                              PairedFusion, LateFusion)}
FUSIONS = tuple(FUSION_CLASSES)


def fusion_class(name: str) -> type[Fusion]:
    """The fusion class registered as ``name``."""
    if name not in FUSION_CLASSES:
        raise ValueError(f"unknown fusion {name!r}: choose one of {', '.join(FUSIONS)}")
    return FUSION_CLASSES[name]


def make_fusion(fusion, **params) -> Fusion:
    """An unfitted fusion: ``make_fusion("prior", weight=0.5)``, or a :class:`Fusion` object as given."""
    return fusion if isinstance(fusion, Fusion) else fusion_class(fusion)(**params)


__all__ = ["ConcatFusion", "FUSIONS", "FUSION_CLASSES", "Fusion", "ImageFusion", "LateFusion", "PairedFusion",
           "PriorFusion", "TextFusion", "fusion_class", "make_fusion"]
