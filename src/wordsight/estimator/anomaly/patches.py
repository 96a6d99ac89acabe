"""Mid-level patch features of images (PatchCore, Roth et al. 2022), from a packaged CNN.

An image is read and preprocessed the way feature extraction reads it (regular files only, bounded,
tiny images at the reduced input size), decoded once for all the encoders that decode it alike
(``features.engines.multi_view.MultiViewBatch.of_models``, as ``extract_blocks`` reads; each
encoder's input is exactly ``EmbedBatch.decode_for_model``'s); the encoder's blocks run in torch and the outputs of its last
stride-8 block and its last stride-16 block are each averaged over 3x3 neighbourhoods (PatchCore's
local aggregation), the stride-16 map upsampled to the stride-8 grid, concatenated and resampled
to a fixed ``GRID`` x ``GRID`` (so images of different sizes give comparable patches). A row of
the result is one image's grid flattened: (GRID * GRID * channels).
"""
from __future__ import annotations

import numpy as np

GRID = 20  # patches per side (a 160-px tiny-image input gives 20 x 20 at stride 8; 224 px is resampled)
STRIDES = (8, 16)  # the mid-level blocks: PatchCore's layer 2 and 3 of a ResNet
BATCH = 32


def _blocks(encoder):
    net = getattr(getattr(encoder, "net", None), "model", None)
    blocks = getattr(net, "_blocks", None) or getattr(net, "features", None)
    if blocks is None:
        raise ValueError(f"{encoder.config.name}: the patchcore method needs a packaged CNN encoder "
                         "(efficientnet-lite0/1/2, mobilenetv2)")
    return blocks


def patch_grid(encoder, x):
    """(N, C, GRID, GRID) torch features of a preprocessed batch ``x`` (N, 3, S, S)."""
    import torch
    import torch.nn.functional as F

    outs = []
    hooks = [b.register_forward_hook(lambda m, i, o: outs.append(o)) for b in _blocks(encoder)]
    try:
        with torch.inference_mode():
            encoder.forward_features(x)
    finally:
        for h in hooks:
            h.remove()
    side = x.shape[-1]  # a stride-s block's map is ceil(side / s) cells wide (260 px, stride 16: 17, not 260 / 16)
    picked = [[o for o in outs if o.shape[-1] == -(-side // s)][-1] for s in STRIDES]
    size = picked[0].shape[-2:]
    maps = [F.interpolate(F.avg_pool2d(o, 3, 1, 1), size=size, mode="bilinear", align_corners=False) for o in picked]
    return F.adaptive_avg_pool2d(torch.cat(maps, 1), GRID)


def read_patches(samples: list, encoder_names: list[str], small_input="auto", batch_size: int | None = None,
                 views: bool = False):
    """(rows (n_read, GRID * GRID * C) float32, the samples read, the failures, and with ``views``
    the uint8 pictures (S, S, 3) of the first encoder's input of each image read, else None)."""
    import torch

    from ...encoders import load_model
    from ...features.engines.batch import EmbedBatch, read_bytes
    from ...features.engines.multi_view import MultiViewBatch
    from ...io.sources import Problem

    fns = [EmbedBatch(e, engine="torch", small_input=small_input) for e in encoder_names]
    reads = MultiViewBatch.of_models([(fn, [(None, "")]) for fn in fns])  # one view per encoder
    encs = [load_model(e) for e in encoder_names]
    kept, failures, inputs, pictures = [], [], [], []
    for s in samples:
        data, err = read_bytes(s)
        xs = reads.inputs(s, data) if data is not None else [(None, err)]
        bad = next((e for x, e in xs if x is None), None)
        if bad is not None:
            failures.append(Problem(s.path, bad))
            continue
        kept.append(s)
        inputs.append([x for x, _ in xs])
    if views:
        pictures = [view_of(xs[0], encoder_names[0]) for xs in inputs]
    rows = []
    step = batch_size or BATCH
    for lo in range(0, len(kept), step):
        part = inputs[lo:lo + step]
        grids = []
        for j, enc in enumerate(encs):
            by_shape = {}
            for i, xs in enumerate(part):
                by_shape.setdefault(xs[j].shape, []).append(i)
            g = [None] * len(part)
            for idx in by_shape.values():
                out = patch_grid(enc, torch.from_numpy(np.stack([part[i][j] for i in idx])))
                for i, o in zip(idx, out):
                    g[i] = o
            grids.append(torch.stack(g))
        inputs[lo:lo + step] = [None] * len(part)  # memory: one batch of inputs at a time after decoding
        rows.append(torch.cat(grids, 1).permute(0, 2, 3, 1).reshape(len(part), -1).numpy().astype(np.float32))
    dim = rows[0].shape[1] if rows else 0
    return (np.concatenate(rows) if rows else np.zeros((0, dim), np.float32)), kept, failures, (pictures if views else None)


def view_of(x: np.ndarray, encoder_name: str) -> np.ndarray:
    """The uint8 (S, S, 3) picture of a preprocessed input (its normalisation undone)."""
    from ...encoders import get_config

    cfg = get_config(encoder_name)
    rgb = x.transpose(1, 2, 0).astype(np.float64) * np.asarray(cfg.std) + np.asarray(cfg.mean)
    return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)
