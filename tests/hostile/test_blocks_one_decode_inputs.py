"""Hostile inputs to the combined read of several blocks (estimator.feature_blocks.extract_blocks
through features.multi_view.extract_models): a corrupt image, a truncated JPEG, an empty file and a
huge-dimension header among good images are each reported once, with their reason, decoded at most
once for all blocks, and the good images keep exactly the features of a read without them."""
from __future__ import annotations

import os

import numpy as np
from PIL import Image

from wordsight.estimator.feature_blocks import extract_blocks

from .conftest import time_limit
from .test_multi_view_inputs import huge_png

ENC = "efficientnet-lite0"
BLOCKS = [ENC, f"tilebag:2:{ENC}", f"tiles:2:{ENC}"]


def _files(d):
    rng = np.random.default_rng(0)
    goods = []
    for i, ext in enumerate(("png", "jpg")):
        path = d / f"good{i}.{ext}"
        Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(path)
        goods.append(str(path))
    whole = (d / "good1.jpg").read_bytes()
    bad = {"truncated.jpg": whole[: len(whole) // 2], "garbage.png": b"\x89PNG\r\n\x1a\n" + bytes(200),
           "empty.jpg": b"", "huge.png": huge_png()}
    for name, data in bad.items():
        (d / name).write_bytes(data)
    return goods, [str(d / n) for n in bad]


def test_bad_images_among_good_ones_are_reported_once_and_skipped(tmp_path, decodes):
    goods, bads = _files(tmp_path)
    mixed = [goods[0], *bads[:2], goods[1], *bads[2:]]
    with time_limit(120):
        blocks = extract_blocks(mixed, BLOCKS, cache=False)
    reasons = {os.path.basename(f.path): f.reason for f in blocks.failures}
    assert len(blocks.failures) == 4 and set(reasons) == {"truncated.jpg", "garbage.png", "empty.jpg", "huge.png"}
    assert "truncated" in reasons["truncated.jpg"] and "empty file" in reasons["empty.jpg"]
    assert "not a recognised image format" in reasons["garbage.png"] or "cannot decode" in reasons["garbage.png"]
    assert "decompression bomb" in reasons["huge.png"] or "too many pixels" in reasons["huge.png"]
    assert [s.path for s in blocks.samples] == goods
    for path in bads:  # one decode tried for the three blocks, not one each
        assert decodes(path) <= 1
    alone = extract_blocks(goods, BLOCKS, cache=False)
    for e in BLOCKS:
        assert blocks.embeddings[e].shape[0] == 2
        assert np.abs(blocks.embeddings[e] - alone.embeddings[e]).max() == 0.0
