"""Paired text: each image's own text (a caption, a product title, a finding from a report) as a
second modality beside the image.

The text of a sample (``Sample.text``: a manifest's ``text`` column, ``--text`` on the command
line, the ``texts`` field of ``POST /v1/predict``) is embedded by the classifier's text model,
L2-normalised and cached like every text embedding (:func:`wordsight.language._text.embed_texts`).
Two fusions use it (:mod:`.fusion`):

- ``paired``: one head on the row ``[image blocks, paired_text_weight * own-text vector]``;
- ``late``: a head on the image blocks and a head on the own-text vector, combined as
  ``log_softmax(log_softmax(z_image) + paired_text_weight * log_softmax(z_text))``.

A sample without text is never zero-filled: its own-text block is NaN in the fused row, and the
image alone decides for it. ``paired`` keeps a second head on the image blocks, fitted on every
training image, for those rows; ``late`` leaves the text term out. The heads that read text are
fitted on the training images that have one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._util.numerics import log_softmax

MODES = ("paired", "late")
PAIRED_HEAD_FILE = "paired_head.safetensors"


def paired_text_vectors(texts, text_model, dim: int | None = None, cache: bool = True) -> np.ndarray:
    """(N, D) float32 L2-normalised embeddings of ``texts``; a row of NaN where a text is None or
    blank (no text: the image alone decides). ``dim`` is D when no text is given at all."""
    from ..language._text import embed_texts

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
    """How a ``paired`` or ``late`` model reads its fused rows: image columns ``[:split]``, own-text
    columns ``[split:split + dim]``; ``head`` is the second head (``paired``: on the image columns,
    for rows without text; ``late``: on the text columns); ``weight`` is ``late``'s text weight."""

    mode: str
    split: int
    dim: int
    weight: float
    head: object  # a fitted Head

    def main_width(self) -> int:
        """Columns the model's main head reads (``late``: the image columns; ``paired``: all)."""
        return self.split if self.mode == "late" else self.split + self.dim

    def second_width(self) -> int:
        return self.dim if self.mode == "late" else self.split

    def logits(self, fused: np.ndarray, main) -> np.ndarray:
        """Log-probabilities of fused rows; a row without text is decided by the image alone."""
        X = np.asarray(fused, np.float64)
        text = has_text(X, self.split)
        img = X[:, : self.split]
        if self.mode == "late":
            out = log_softmax(main.logits(img))
            if text.any():
                t = log_softmax(self.head.logits(X[text, self.split:]))
                out[text] = log_softmax(out[text] + self.weight * t)
            return out
        out = log_softmax(self.head.logits(img))  # the image-only head: what a row without text gets
        if text.any():
            out[text] = log_softmax(main.logits(X[text]))
        return out

    def torch(self, fused, main, second):
        """The same log-probabilities in torch (``main``, ``second``: the heads' torch forms);
        differentiable through the columns each row's answer reads."""
        import torch

        text = ~torch.isnan(fused[:, self.split:]).any(1, keepdim=True)
        safe = torch.where(text, fused[:, self.split:], torch.zeros_like(fused[:, self.split:]))  # never read
        img = fused[:, : self.split]
        if self.mode == "late":
            zi = torch.log_softmax(main(img), 1)
            both = torch.log_softmax(zi + self.weight * torch.log_softmax(second(safe), 1), 1)
            return torch.where(text, both, zi)
        with_text = torch.log_softmax(main(torch.cat([img, safe], 1)), 1)
        return torch.where(text, with_text, torch.log_softmax(second(img), 1))

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


def fit_paired(mode: str, make_head, X: np.ndarray, y: np.ndarray, n_classes: int, split: int,
               weight: float) -> tuple[object, PairedText]:
    """(main head, :class:`PairedText`) fitted on fused rows ``X`` whose text block may be NaN."""
    X = np.asarray(X, np.float64)
    text = has_text(X, split)
    if len(np.unique(y[text])) < 2:
        raise ValueError(f"fusion {mode!r} needs paired texts (a manifest's 'text' column): {int(text.sum())} of "
                         f"{len(X)} training images have one, covering {len(np.unique(y[text]))} class(es); at "
                         "least two classes need texts")
    dim = X.shape[1] - split
    if mode == "late":
        main = make_head().fit(X[:, :split], y, n_classes)
        second = make_head().fit(X[text, split:], y[text], n_classes)
    else:
        main = make_head().fit(X[text], y[text], n_classes)
        second = make_head().fit(X[:, :split], y, n_classes)
    return main, PairedText(mode, split, dim, float(weight), second)


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
