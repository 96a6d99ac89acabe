"""The small pieces of maths every layer uses, written once (numpy; torch forms beside them)."""
from __future__ import annotations

import numpy as np


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, C) scores (shift-invariant, so the max is subtracted first)."""
    z = np.asarray(z, np.float64)
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of (N, C) scores."""
    z = np.asarray(z, np.float64)
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def log_sigmoid(z: np.ndarray) -> np.ndarray:
    """Element-wise ``log(1 / (1 + exp(-z)))``, stable for large ``|z|`` (``-logaddexp(0, -z)``)."""
    return -np.logaddexp(0.0, -np.asarray(z, np.float64))


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Element-wise logistic function: independent probabilities of per-label scores."""
    return np.exp(log_sigmoid(z))


def l2_normalize(x: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Rows scaled to unit L2 norm (rows of zeros stay zero)."""
    x = np.asarray(x, dtype)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def l2_normalize_torch(x):
    """L2 normalisation in torch whose norm is a constant for gradients (values are unchanged).

    Differentiating through the norm adds a term ``-(w . e_hat) e_hat`` to every class's gradient,
    proportional to the embedding itself: for a class the image does not look like, Grad-CAM would
    then light up whatever the encoder sees most (the evidence for the *predicted* class). With the
    norm held constant, a linear block's score is a sum over feature-map positions (CAM).
    """
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12).detach()
