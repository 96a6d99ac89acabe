"""Attention rollout (Abnar & Zuidema 2020) for ``hf:`` vision transformers.

Each layer's attention, averaged over heads (or their maximum), gets the identity added for the
residual path and its rows renormalised; the product over layers says how much each input patch
reaches the [CLS] token that the embedding is read from. ``discard_ratio`` drops the weakest
attention links per layer first (as in Gildenblat's vit-explain), which sharpens the map.

Rollout is class-agnostic: it shows what the encoder attends to, whatever class is asked for.
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F

from ._pipeline import Subject, View


@contextlib.contextmanager
def _eager_attention(model):
    """transformers' fused (sdpa) attention returns no weights; switch to the eager code for the
    call and back afterwards (the encoder is shared within the process)."""
    before = getattr(model.config, "_attn_implementation", None)
    if before and before != "eager" and hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
        try:
            yield
        finally:
            model.set_attn_implementation(before)
    else:
        yield


def rollout_matrix(attentions, head_fusion: str = "mean", discard_ratio: float = 0.0) -> torch.Tensor:
    """(B, T, T) rollout of per-layer attentions [(B, heads, T, T), ...]."""
    result = None
    for a in attentions:
        a = a.float()
        a = a.mean(1) if head_fusion == "mean" else a.max(1).values if head_fusion == "max" else a.min(1).values
        if discard_ratio > 0:  # drop the weakest links, never those to [CLS]
            thr = torch.quantile(a.flatten(1), discard_ratio, dim=1)[:, None, None]
            keep = a >= thr
            keep[:, :, 0] = True
            a = a * keep
        eye = torch.eye(a.shape[-1])
        a = (a + eye) / 2
        a = a / a.sum(-1, keepdim=True)
        result = a if result is None else a @ result
    return result


def has_attention(encoder) -> bool:
    """Whether ``encoder`` is an ``hf:`` vision transformer with a [CLS] token (what rollout reads)."""
    model = getattr(encoder, "model", None)
    return model is not None and hasattr(model, "config") and getattr(model.config, "model_type", "") in (
        "vit", "deit", "beit", "dinov2", "data2vec-vision", "vit_msn", "vit_mae")


def rollout(subject: Subject, view: View, head_fusion: str = "mean", discard_ratio: float = 0.0) -> np.ndarray:
    """Map over the view (S, S) in [0, 1]: the rollout from [CLS] to each patch."""
    enc = subject.encoder()
    model = getattr(enc, "model", None)
    if not has_attention(enc):
        raise ValueError(f"{subject.encoder_name}: attention rollout needs an hf: vision transformer with a "
                         "[CLS] token (ViT, DeiT, BEiT, DINOv2); use gradcam for CNNs or lime for any model")
    x = subject.view_inputs(view)[subject.encoder_name]
    with _eager_attention(model), torch.inference_mode():
        out = model(pixel_values=x, output_attentions=True)
    att = out.attentions
    if not att:
        raise RuntimeError(f"{subject.encoder_name}: the model returned no attention weights")
    r = rollout_matrix(att, head_fusion, discard_ratio)[0, 0]  # from [CLS]
    n_patches = x.shape[-1] // model.config.patch_size
    patches = r[-n_patches * n_patches:]  # after [CLS] (and any register/distillation tokens)
    grid = patches.reshape(1, 1, n_patches, n_patches)
    m = F.interpolate(grid, size=view.image.shape[:2], mode="bilinear", align_corners=False)[0, 0].numpy()
    m = m - m.min()
    top = float(m.max())
    return (m / top if top > 0 else m).astype(np.float32)
