"""Grad-CAM (Selvaraju et al. 2017) and Grad-CAM++ (Chattopadhay et al. 2018) through the whole
wordsight model: encoder -> fusion -> head, so the map answers "where in the image is the evidence
for *this model's* class", not for an ImageNet class.

Written here with a tensor hook rather than taken from the ``grad-cam`` package: that package
imports torchvision, whose PyPI wheels are CUDA builds that fail to import beside wordsight's CPU
torch. The maths is a few lines (the same as ``pytorch_grad_cam.GradCAM`` / ``GradCAMPlusPlus``).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ._pipeline import Subject, View

METHODS = ("gradcam", "gradcam++")


def _weights(acts: torch.Tensor, grads: torch.Tensor, method: str) -> torch.Tensor:
    if method == "gradcam":
        return grads.mean((2, 3))
    # Grad-CAM++: alpha = g^2 / (2 g^2 + sum_ij A g^3), weights = sum_ij alpha * relu(g)
    g2, g3 = grads.pow(2), grads.pow(3)
    denom = 2 * g2 + acts.sum((2, 3), keepdim=True) * g3
    alpha = g2 / torch.where(denom != 0, denom, torch.ones_like(denom))
    return (alpha * F.relu(grads)).sum((2, 3))


def captured(subject: Subject, view: View, target: int, names: list[str]) -> dict[str, tuple]:
    """{encoder name: (its final feature map, the gradient of the score of class ``target`` there)}
    for each of ``names``, from one backward pass through the whole model (a tile bag's: one map
    per tile, ``(tiles, C, h, w)``)."""
    inputs = subject.view_inputs(view)
    subject.capture = {n: {} for n in names}
    try:
        with torch.enable_grad():
            scores = subject.scores(inputs)
            scores[0, target].backward()
        return {n: (h["fmap"].detach().float(), h["grad"].detach().float()) for n, h in subject.capture.items()}
    finally:
        subject.capture = None
        for n in names:
            subject.encoder(n).zero_grad(set_to_none=True)


def cam_maps(acts: torch.Tensor, grads: torch.Tensor, method: str) -> torch.Tensor:
    """(B, 1, h, w) class activation maps, ReLU'd, over the feature map's cells."""
    weights = _weights(acts, grads, method)
    return F.relu((weights[:, :, None, None] * acts).sum(1, keepdim=True))


def cam(subject: Subject, view: View, target: int, method: str = "gradcam") -> np.ndarray:
    """The map over the view (S, S) in [0, 1] for class index ``target``: zero where nothing
    speaks for the class. The probabilities an explanation reports are ``Subject.proba``'s.

    The activations are the encoder's final feature map, the one mean-pooled into the embedding
    (post-activation), rather than ``encoder.target_layer``: for EfficientNet-Lite that layer is
    the head convolution before its batch norm, whose uncentred outputs made the maps of a
    trained head point at the wrong objects (measured on a 2x2 grid of photos, see the tests).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if not hasattr(subject.encoder(), "forward_features"):
        raise ValueError(f"{subject.encoder_name}: Grad-CAM needs a CNN encoder (forward_features); "
                         "use method='rollout' for ViT encoders or method='lime' for any model")
    held = captured(subject, view, target, [subject.encoder_name])[subject.encoder_name]
    m = cam_maps(*held, method)
    size = view.image.shape[:2]
    m = F.interpolate(m, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()
    top = float(m.max())
    m = m / top if top > 0 else m
    return m.astype(np.float32)
