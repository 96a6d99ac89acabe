"""Putting an image into words from its ImageNet concept probabilities.

- :func:`describe`: readable text, ``resembles: sandal (0.41), an open shoe ...; clog (0.12), ...``
- :func:`semantic_vectors`: ConSE (Norouzi et al. 2014): the probability-weighted mean of the
  embeddings of the top-T concepts, a point in the text encoder's space where class texts live.
- :class:`TextSpaceMap`: a second way in, DeViSE-style: a linear map from image features to the
  text space, fitted on the ImageNet head's class weights paired with the concept embeddings.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._util.numerics import l2_normalize
from ._text import text_model_name
from .concepts import ConceptBank, default_bank

# Chosen on Fashion-MNIST training images (benchmarks/zeroshot_fashion_mnist.py); ConSE's paper
# used T = 10.
DEFAULT_TOP_T = 10


def _probs(probs) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float32)
    if p.ndim == 1:
        p = p[None]
    if p.ndim != 2:
        raise ValueError(f"probabilities must be (N, C), got shape {p.shape}")
    return p


def conse_weights(probs: np.ndarray, top_t: int = DEFAULT_TOP_T) -> np.ndarray:
    """ConSE's mixing weights: each row keeps its ``top_t`` largest probabilities, renormalised to
    sum to one (the rest are 0). ``semantic_vectors = conse_weights(p) @ bank.embeddings``."""
    if top_t < 1:
        raise ValueError(f"top_t must be >= 1, not {top_t}")
    p = _probs(probs)
    t = min(int(top_t), p.shape[1])
    if t < p.shape[1]:
        idx = np.argpartition(-p, t - 1, axis=1)[:, :t]
        sparse = np.zeros_like(p)
        np.put_along_axis(sparse, idx, np.take_along_axis(p, idx, 1), 1)
        p = sparse
    return p / np.maximum(p.sum(1, keepdims=True), 1e-12)


def semantic_vectors(probs, bank: ConceptBank | None = None, top_t: int = DEFAULT_TOP_T,
                     chunk: int = 4096) -> np.ndarray:
    """ConSE semantic vectors: (N, D) float32, L2-normalised.

    ``probs`` (N, C) are concept probabilities (an ImageNet softmax, C = ``len(bank)``); each row
    mixes the text embeddings of its ``top_t`` concepts with :func:`conse_weights`.
    """
    bank = bank or default_bank()
    p = _probs(probs)
    if p.shape[1] != len(bank):
        raise ValueError(f"probabilities have {p.shape[1]} columns but the concept bank has {len(bank)} concepts")
    out = np.empty((len(p), bank.dim), np.float32)
    for i in range(0, len(p), chunk):
        out[i : i + chunk] = conse_weights(p[i : i + chunk], top_t) @ bank.embeddings
    return l2_normalize(out)


def semantic_vectors_torch(probs, bank_embeddings, top_t: int = DEFAULT_TOP_T):
    """:func:`semantic_vectors` in torch (differentiable in the probabilities: the top-T choice is
    piecewise constant). ``bank_embeddings``: the bank's (C, D) embeddings as a tensor."""
    from .._util.numerics import l2_normalize_torch

    t = min(int(top_t), probs.shape[1])
    top, idx = probs.topk(t, dim=1)
    w = top / top.sum(1, keepdim=True).clamp_min(1e-12)
    return l2_normalize_torch((w.unsqueeze(1) @ bank_embeddings.to(w.dtype)[idx]).squeeze(1))


def top_concepts(probs, bank: ConceptBank | None = None, top: int = 3) -> list[list[tuple[str, float]]]:
    """Per row, the ``top`` concepts (name, probability), most probable first."""
    bank = bank or default_bank()
    return [[(bank.names[j], p) for j, p in row] for row in _top(probs, bank, top)]


def _top(probs, bank: ConceptBank, top: int) -> list[list[tuple[int, float]]]:
    p = _probs(probs)
    if p.shape[1] != len(bank):
        raise ValueError(f"probabilities have {p.shape[1]} columns but the concept bank has {len(bank)} concepts")
    k = min(top, p.shape[1])
    idx = np.argpartition(-p, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(p, idx, 1), axis=1)
    idx = np.take_along_axis(idx, order, 1)
    return [[(int(j), float(p[r, j])) for j in row] for r, row in enumerate(idx)]


def describe(probs, bank: ConceptBank | None = None, top: int = 3, min_probability: float = 0.0) -> list[str]:
    """One readable line per image: ``resembles: sandal (0.41), an open shoe ...; clog (0.12), ...``.

    Of the ``top`` concepts, only those with probability >= ``min_probability`` are listed (see
    :func:`~wordsight.text.phrasing.concept_threshold`); an image with none says so
    (:func:`~wordsight.text.phrasing.no_concept`).
    """
    from .phrasing import no_concept

    bank = bank or default_bank()
    lines = []
    for row in _top(probs, bank, top):
        parts = [f"{bank.names[j]} ({p:.2f})" + (f", {bank.short[j]}" if bank.short[j] else "")
                 for j, p in row if p >= min_probability]
        lines.append("resembles: " + "; ".join(parts) if parts else no_concept(bank))
    return lines


def head_weights(encoder) -> tuple[np.ndarray, np.ndarray]:
    """(W (C, F), b (C,)) of an encoder's ImageNet head, read by probing ``classifier_head`` with
    the identity (works for any linear head, whatever the architecture calls its layer)."""
    import torch

    head = getattr(getattr(encoder, "net", None), "classifier_head", None)
    if head is None or not encoder.config.has_imagenet_head:
        raise ValueError(f"{encoder.config.name}: this encoder has no ImageNet head to map from")
    dim = encoder.config.dim
    with torch.inference_mode():
        was_training = encoder.training
        encoder.eval()
        bias = head(torch.zeros(1, dim)).float()
        weights = head(torch.eye(dim)).float() - bias
        encoder.train(was_training)
    return weights.T.numpy().copy(), bias[0].numpy().copy()


class TextSpaceMap:
    """A linear map from image features into the text space (DeViSE-style).

    Fitted by ridge regression on pairs (ImageNet head weight of class c, text embedding of
    concept c): the head weight of a class is the direction in feature space that the class's
    images point to, so the map learns where each such direction lands among the texts. Both sides
    are centred over classes; ``alpha`` is relative to the mean squared norm of the weights.
    """

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def fit(self, weights: np.ndarray, text_embeddings: np.ndarray) -> "TextSpaceMap":
        """The ridge map from class-score space to the text space: ``weights`` (C, d) onto ``text_embeddings`` (C, D)."""
        W = np.asarray(weights, np.float64)
        E = np.asarray(text_embeddings, np.float64)
        if len(W) != len(E):
            raise ValueError(f"{len(W)} class weights but {len(E)} text embeddings")
        Wc = W - W.mean(0)
        Ec = E - E.mean(0)
        gram = Wc @ Wc.T  # (C, C): the dual form is cheaper than (F, F) when C < F
        lam = self.alpha * float(np.trace(gram)) / len(W)
        self.matrix_ = (Wc.T @ np.linalg.solve(gram + lam * np.eye(len(W)), Ec)).astype(np.float32)
        return self

    @classmethod
    def from_encoder(cls, encoder="efficientnet-lite0", bank: ConceptBank | None = None,
                     alpha: float = 1.0) -> "TextSpaceMap":
        """The map fitted on an encoder's ImageNet head weights and the concept bank's embeddings."""
        from ..encoders import load_model

        enc = load_model(encoder) if isinstance(encoder, str) else encoder
        bank = bank or default_bank()
        W, _ = head_weights(enc)
        if len(W) != len(bank):
            raise ValueError(f"{enc.config.name}: head has {len(W)} classes but the bank has {len(bank)} concepts")
        m = cls(alpha).fit(W, bank.embeddings)
        m.encoder_ = enc.config.name
        m.text_model_ = text_model_name(bank.text_model)
        return m

    def transform(self, features) -> np.ndarray:
        """(N, F) image features -> (N, D) L2-normalised text-space vectors."""
        X = np.asarray(features, np.float32)
        if X.ndim != 2 or X.shape[1] != self.matrix_.shape[0]:
            raise ValueError(f"features must be (N, {self.matrix_.shape[0]}), got {X.shape}")
        # The map's columns lie in the span of the centred class weights, so X @ matrix_ sees
        # only the centred logits W x - mean_c(w_c . x): no feature centring is needed.
        return l2_normalize(X @ self.matrix_)

    def save(self, folder) -> Path:
        """Write the map to ``folder`` (safetensors + JSON); returns the folder."""
        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({"matrix": self.matrix_}, str(folder / "text_map.safetensors"))
        meta = {"alpha": self.alpha, "encoder": getattr(self, "encoder_", None),
                "text_model": getattr(self, "text_model_", None)}
        (folder / "text_map.json").write_text(json.dumps(meta, indent=2))
        return folder

    @classmethod
    def load(cls, folder) -> "TextSpaceMap":
        """A map written by :meth:`save`."""
        from safetensors.numpy import load_file

        folder = Path(folder)
        for name in ("text_map.json", "text_map.safetensors"):
            if not (folder / name).exists():
                raise FileNotFoundError(f"{folder / name}: missing (not a saved TextSpaceMap folder)")
        meta = json.loads((folder / "text_map.json").read_text())
        arrays = load_file(str(folder / "text_map.safetensors"))
        m = cls(meta["alpha"])
        m.matrix_ = arrays["matrix"]
        m.encoder_, m.text_model_ = meta.get("encoder"), meta.get("text_model")
        return m
