"""Paired text: each image's own text (a caption, a product title, a finding from a report) as a
second modality beside the image.

The text of a sample (``Sample.text``: a manifest's ``text`` column, ``--text`` on the command
line, the ``texts`` field of ``POST /v1/predict``) is embedded by the classifier's text model,
L2-normalised and cached like every text embedding (:func:`wordsight.text._text.embed_texts`).
Two fusions use it (:mod:`.fusion.paired`): ``paired`` (one head on the image blocks and
``weight`` times the own-text vector) and ``late`` (a head on each, their log-probabilities mixed).

A sample without text is never zero-filled: its own-text block is NaN in the fused row, and the
image alone decides for it. What a paired / late model learned besides its main head is one
:class:`PairedText` (the second head and where the row splits), saved in config.json.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PAIRED_HEAD_FILE = "paired_head.safetensors"


def paired_text_vectors(texts, text_model, dim: int | None = None, cache: bool = True) -> np.ndarray:
    """(N, D) float32 L2-normalised embeddings of ``texts``; a row of NaN where a text is None or
    blank (no text: the image alone decides). ``dim`` is D when no text is given at all."""
    from ..text._text import embed_texts

    texts = [t if isinstance(t, str) and t.strip() else None for t in texts]
    unique = sorted({t for t in texts if t is not None})
    if not unique:
        if dim is None:
            from ..encoders import get_config

            dim = get_config(text_model).dim if isinstance(text_model, str) else 0
            if not dim:
                raise ValueError("none of the images has a paired text, so the text block's size is unknown")
        return np.full((len(texts), int(dim)), np.nan, np.float32)
    vecs = embed_texts(unique, text_model, cache=cache)  # each distinct text once (a width that does not
    # fit the fitted model is refused where the fused rows are checked: Classifier.featurize)
    row = {t: i for i, t in enumerate(unique)}
    out = np.full((len(texts), vecs.shape[1]), np.nan, np.float32)
    have = [i for i, t in enumerate(texts) if t is not None]
    out[have] = vecs[[row[texts[i]] for i in have]]
    return out


def has_text(fused: np.ndarray, split: int) -> np.ndarray:
    """(N,) bool: the rows whose own-text block (columns ``split:``) holds a text, not NaN."""
    return ~np.isnan(np.asarray(fused)[:, split:]).any(1)


@dataclass
class PairedText:
    """How a ``paired`` or ``late`` model (``mode``) reads its fused rows: image columns ``[:split]``,
    own-text columns ``[split:split + dim]``; ``head`` is the second head (``paired``: on the image
    columns, for rows without text; ``late``: on the text columns); ``weight`` is the fusion's."""

    mode: str
    split: int
    dim: int
    weight: float
    head: object  # a fitted Head

    # ------------------------------------------------------------------ saving
    def to_config(self, head_name: str) -> tuple[dict, dict]:
        """(the second head's arrays, JSON for config.json)."""
        arrays, info = self.head.state()
        return arrays, {"mode": self.mode, "split": int(self.split), "dim": int(self.dim),
                        "weight": float(self.weight), "file": PAIRED_HEAD_FILE,
                        "head": {"name": head_name, "info": info, "arrays": sorted(arrays)}}

    @classmethod
    def from_config(cls, d: dict, arrays: dict, fusion: str, n_features: int, head_params: dict,
                    image_dims: int) -> "PairedText":
        """Rebuilt from config.json's ``paired`` entry; ValueError says what does not fit."""
        from .heads import head_class

        if not isinstance(d, dict) or d.get("mode") != fusion:
            raise ValueError(f"fusion {fusion!r} needs a 'paired' entry of mode {fusion!r}")
        split, dim, weight = d.get("split"), d.get("dim"), d.get("weight")
        if type(split) is not int or type(dim) is not int or split <= 0 or dim <= 0 or split + dim != n_features:
            raise ValueError(f"split {split!r} + text dim {dim!r} must be positive and add up to the "
                             f"{n_features} fused columns")
        if image_dims and split != image_dims:
            raise ValueError(f"split {split} is not the image blocks' {image_dims} columns")
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not np.isfinite(weight) or weight < 0:
            raise ValueError(f"weight {weight!r} must be a finite number >= 0")
        h = d.get("head")
        if not isinstance(h, dict) or not isinstance(h.get("info"), dict) or sorted(arrays) != sorted(h.get("arrays", [])):
            raise ValueError(f"the second head's arrays {sorted(arrays)} do not match the config's")
        head = head_class(h["name"]).from_state(arrays, h["info"], head_params)
        return cls(fusion, split, dim, float(weight), head)


def with_texts(paths, texts):
    """A :class:`~wordsight.io.sources.Source` of image files ``paths``, ``texts[i]`` the own text
    of ``paths[i]`` (``--text`` on the command line); ValueError when they do not pair up."""
    from pathlib import Path

    from ..io.sources import Sample, Source

    paths, texts = [str(p) for p in paths], list(texts)
    if len(texts) != len(paths):
        raise ValueError(f"{len(texts)} text(s) for {len(paths)} image(s): give one text per image file, in order")
    listed = [p for p in paths if Path(p).is_dir() or Path(p).suffix.lower() in (".csv", ".jsonl", ".ndjson")]
    if listed:
        raise ValueError(f"{listed[0]}: texts pair with image files; a folder or manifest cannot take them (a "
                         "manifest gives each image's text in its 'text' column)")
    return Source([Sample(p, None, t if t.strip() else None) for p, t in zip(paths, texts)], [])
