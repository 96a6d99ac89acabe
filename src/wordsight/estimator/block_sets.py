"""Subsets of extracted feature blocks: one extraction over a pool of encoders, many encoder sets.

A search (and an ensemble whose members use different encoders) extracts every encoder of the
pool once (:func:`~.blocks.extract_blocks` keeps each encoder's ImageNet probabilities in
``probs_by_encoder``); :func:`subset_blocks` then gives exactly the blocks a Classifier with
``encoders=subset`` would have extracted itself: the same embeddings, the ImageNet probabilities
of the subset's first encoder that has them, and the wanted augmented views.
"""
from __future__ import annotations

from .feature_blocks import FeatureBlocks


def subset_blocks(blocks: FeatureBlocks, encoders, views: int = 0) -> FeatureBlocks:
    """``blocks`` restricted to ``encoders`` (in that order) and to augmented views ``1..views``."""
    encoders = [encoders] if isinstance(encoders, str) else list(encoders)
    missing = [e for e in encoders if e not in blocks.embeddings]
    if missing:
        raise ValueError(f"the extracted features lack encoder(s) {missing} (have {sorted(blocks.embeddings)})")
    if views and len(blocks.views) < views:
        raise ValueError(f"{views} augmented views needed but the features hold {len(blocks.views)}")
    by_enc = blocks.probs_by_encoder or ({blocks.probs_encoder: blocks.probs} if blocks.probs is not None else {})
    probs_enc = next((e for e in encoders if e in by_enc), None)
    return FeatureBlocks(list(blocks.samples), {e: blocks.embeddings[e] for e in encoders},
                         None if probs_enc is None else by_enc[probs_enc], probs_enc, list(blocks.failures),
                         {v: subset_blocks(blocks.views[v], encoders) for v in range(1, views + 1)},
                         dict(blocks.prior_features), {e: by_enc[e] for e in encoders if e in by_enc})
