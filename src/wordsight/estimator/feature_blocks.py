"""Feature blocks: per-encoder embeddings (and ImageNet probabilities) of images and of their
augmented views, extracted once through the shared feature cache and reused by every fusion and
head."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FeatureBlocks:
    """Per-image features before fusion: ``embeddings[encoder][i]`` and ``probs[i]`` (ImageNet
    softmax of ``probs_encoder``) belong to ``samples[i]``; ``failures`` were skipped."""

    samples: list
    embeddings: dict[str, np.ndarray]
    probs: np.ndarray | None = None
    probs_encoder: str | None = None
    failures: list = field(default_factory=list)
    views: dict[int, "FeatureBlocks"] = field(default_factory=dict)  # augmented views, by index
    # The language prior's reading of the images, by (encoder, view): ImageNet probabilities and
    # embeddings of that view at full input size; filled on first use by Classifier.prior_features,
    # or given (explanations).
    prior_features: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    # Every encoder's ImageNet probabilities (``probs`` is the first one's): a subset of the encoders
    # takes its own (models.block_sets, for searches and ensembles).
    probs_by_encoder: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> list:
        """The label of every row (None where the sample has none)."""
        return [getattr(s, "label", None) for s in self.samples]

    def take(self, idx) -> "FeatureBlocks":
        """The rows ``idx`` of every block, view and prior reading, in that order."""
        idx = np.asarray(idx, np.int64)
        return FeatureBlocks([self.samples[i] for i in idx], {k: v[idx] for k, v in self.embeddings.items()},
                             None if self.probs is None else self.probs[idx], self.probs_encoder, [],
                             {v: b.take(idx) for v, b in self.views.items()},
                             {k: tuple(a[idx] for a in v) for k, v in self.prior_features.items()},
                             {k: v[idx] for k, v in self.probs_by_encoder.items()})


@dataclass
class Featurized:
    """Fused features of the images that could be read (``matrix[i]`` is ``samples[i]``)."""

    matrix: np.ndarray
    samples: list
    failures: list = field(default_factory=list)
    blocks: FeatureBlocks | None = None
    prior_logits: np.ndarray | None = None
    n_inputs: int = 0
    rows: np.ndarray | None = None  # position of each kept sample among the inputs

    def scatter(self, values: np.ndarray) -> np.ndarray:
        """Per-input rows: ``values`` at the kept inputs, NaN where an image failed."""
        out = np.full((self.n_inputs, values.shape[1]), np.nan)
        out[self.rows] = values
        return out


def from_feature_set(fs, encoders: list[str]) -> FeatureBlocks:
    """FeatureBlocks of a single-encoder :class:`~wordsight.features.FeatureSet`."""
    if len(encoders) != 1 or (fs.model and fs.model != encoders[0]):
        raise ValueError(f"a FeatureSet of {fs.model!r} cannot feed encoders {encoders}")
    probs = fs.probabilities
    return FeatureBlocks(list(fs.samples), {encoders[0]: fs.embeddings}, probs,
                         encoders[0] if probs is not None else None, list(fs.failures))


def extract_blocks(source, encoders: list[str], *, view=None, view_key: str = "", cache=None,
                   batch_size=None, quiet=True, small_input="auto", precision="auto") -> FeatureBlocks:
    """Every encoder's features of ``source`` (one view), keeping the images all encoders read.
    ``precision``: one for all encoders, or a dict encoder -> precision. Each image is read once and
    decoded once for all encoders (global, ``tiles:N:``, tile bags) that decode it alike
    (:func:`~wordsight.features.multi_view.extract_models`), with the cache entries of a read per encoder."""
    per = _read_blocks(source, encoders, view, view_key, cache=cache, batch_size=batch_size, quiet=quiet,
                       small_input=small_input, precision=precision)
    failures = []
    for fs in per.values():
        seen = {g.path for g in failures}
        failures += [f for f in fs.failures if f.path not in seen]
    keep = set.intersection(*({s.path for s in fs.samples} for fs in per.values()))
    samples = [s for s in per[encoders[0]].samples if s.path in keep]
    emb, probs, probs_enc, by_enc = {}, None, None, {}
    for enc, fs in per.items():
        pos = {s.path: i for i, s in enumerate(fs.samples)}
        rows = [pos[s.path] for s in samples]
        emb[enc] = fs.embeddings[rows]
        if fs.probabilities is not None:
            by_enc[enc] = fs.probabilities[rows]
        if probs is None and fs.probabilities is not None:
            probs, probs_enc = fs.probabilities[rows], enc
    return FeatureBlocks(samples, emb, probs, probs_enc, failures, probs_by_encoder=by_enc)


def _read_blocks(source, encoders: list[str], view, view_key: str, *, precision, **options) -> dict:
    """``{encoder: FeatureSet}`` of ``source`` through ``view``, from one read of each image."""
    from ..features.multi_view import extract_models
    from ..features.tilebag import bag_read, bag_set, is_bag

    reads = []
    for enc in encoders:
        model, views = bag_read(enc, view, view_key) if is_bag(enc) else (enc, [(view, view_key)])
        reads.append((model, views, precision.get(enc, "auto") if isinstance(precision, dict) else precision))
    sets = extract_models(source, reads, **options)
    return {enc: bag_set(enc, list(vs)) if is_bag(enc) else vs[0] for enc, vs in zip(encoders, sets)}


def add_views(blocks: FeatureBlocks, source, n_views: int, augment, **options) -> FeatureBlocks:
    """``blocks`` with ``n_views`` augmented views of each image (deterministic per image, cached)."""
    for v in range(1, n_views + 1):
        vb = extract_blocks(source, list(blocks.embeddings), view=augment.view(v), view_key=augment.view_key(v),
                            **options)
        pos = {s.path: i for i, s in enumerate(vb.samples)}
        missing = [s.path for s in blocks.samples if s.path not in pos]
        if missing:  # a view failed where the image did not
            raise RuntimeError(f"augmented view {v} failed for {missing[:3]}")
        blocks.views[v] = vb.take([pos[s.path] for s in blocks.samples])
    return blocks


def is_array(X) -> bool:
    """A feature matrix (ndarray, sparse, nested lists of numbers), as opposed to images."""
    import os

    import scipy.sparse as sp

    if isinstance(X, np.ndarray) or sp.issparse(X):
        return True
    if isinstance(X, (list, tuple)) and X:
        first = X[0]
        return isinstance(first, (list, tuple, np.ndarray, int, float, np.number)) and not isinstance(first, str)
    return hasattr(X, "__array__") and not isinstance(X, (str, os.PathLike))


def predicted_classes(P: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The most probable class of each row of ``P``; ``None`` for a NaN row (an unreadable image)."""
    ok = ~np.isnan(P).any(1)
    out = np.empty(len(P), dtype=classes.dtype if ok.all() else object)
    out[ok] = classes[P[ok].argmax(1)]
    if not ok.all():
        out[~ok] = None
    return out


def input_rows(src, blocks: FeatureBlocks) -> tuple[np.ndarray, int]:
    """Where each row of ``blocks`` stands among the inputs of ``src`` (None: the blocks are the
    inputs), and how many inputs there were: failed images leave gaps that ``scatter`` fills."""
    if src is None:
        return np.arange(len(blocks)), len(blocks)
    pos = {s.path: i for i, s in enumerate(src.samples)}
    return np.array([pos[s.path] for s in blocks.samples], np.int64), len(src.samples)


def prediction_records(model, X, top_k: int, describe: bool) -> list:
    """One :class:`~wordsight.io.records.Prediction` per input of ``model`` (a Classifier or an
    Ensemble: ``featurize``, ``proba_featurized``, ``describe_blocks``), then one per failure."""
    return featurized_records(model, model.featurize(X), top_k, describe)


def featurized_records(model, F: Featurized, top_k: int, describe: bool) -> list:
    """:func:`prediction_records` of rows already featurized (the server reads ``F`` once for the
    records and for the out-of-distribution score)."""
    from ..io.records import Prediction

    P = model.proba_featurized(F)
    texts = model.describe_blocks(F.blocks, P) if describe and F.blocks is not None else None
    out = model.task_.records([getattr(s, "path", None) for s in F.samples],  # the task's rows (label sets...)
                              [getattr(s, "label", None) for s in F.samples], model.classes_, P, top_k, texts)
    return out + [Prediction(f.path, error=f.reason) for f in F.failures]


def relabel(X, y):
    """The source of ``X`` with labels from ``y`` (one per listed image, in order)."""
    from dataclasses import replace

    from ..io.sources import Source, open_source

    src = open_source(X)
    y = list(y)
    if len(y) != len(src.samples):
        raise ValueError(f"y has {len(y)} labels but {len(src.samples)} images were listed")
    return Source([replace(s, label=lab) for s, lab in zip(src.samples, y)], list(src.problems))
