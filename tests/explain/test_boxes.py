"""explain.boxes.view_box: the part of an image a model input covers, written out by hand for wide,
tall, square, tiny (small input) and exactly resized inputs, and checked against the real
preprocessing (encoders.preprocess.resize_and_crop) on coordinate ramps. No model runs."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from wordsight.encoders import get_config
from wordsight.encoders.preprocess import resize_and_crop
from wordsight.explain.boxes import view_box

CFG = get_config("efficientnet-lite0")  # resize the shorter side to 256, centre crop 224
SMALL = dataclasses.replace(CFG, input_size=160, resize_size=183)  # the tiny-image input


@pytest.mark.parametrize(("size", "cfg", "want"), [
    # 451 x 300: resized to 385 x 256, crop from (80, 16): (161 // 2, 32 // 2)
    ((451, 300), CFG, (80 * 451 / 385, 16 * 300 / 256, 304 * 451 / 385, 240 * 300 / 256)),
    ((300, 451), CFG, (16 * 300 / 256, 80 * 451 / 385, 240 * 300 / 256, 304 * 451 / 385)),
    ((256, 256), CFG, (16.0, 16.0, 240.0, 240.0)),
    # 1000 x 999: 256 / 999 gives 256.26 -> 256 wide and 256 high: crop from (16, 16)
    ((1000, 999), CFG, (16 * 1000 / 256, 16 * 999 / 256, 240 * 1000 / 256, 240 * 999 / 256)),
    # a 28-px garment at the small input: resized to 183, crop of 160 from 11
    ((28, 28), SMALL, (11 * 28 / 183, 11 * 28 / 183, 171 * 28 / 183, 171 * 28 / 183)),
    ((28, 40), SMALL, (11 * 28 / 183, 50 * 40 / 261, 171 * 28 / 183, 210 * 40 / 261)),  # 183 x 261: (0, 101 // 2)
    ((451, 300), dataclasses.replace(CFG, resize_mode="exact"), (0.0, 0.0, 451.0, 300.0)),
])
def test_the_box_written_out(size, cfg, want):
    got = view_box(size, cfg)
    assert all(isinstance(v, float) for v in got)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


@pytest.mark.parametrize(("size", "cfg"), [((451, 300), CFG), ((300, 451), CFG), ((640, 480), CFG),
                                           ((28, 40), SMALL), ((50, 31), SMALL)])
def test_the_box_is_where_the_preprocessed_input_comes_from(size, cfg):
    """An image whose red channel is its column and green its row (scaled to 0-255): the model
    input's first and last columns and rows come from the box's edges (within a pixel and a half)."""
    w, h = size
    x, y = np.meshgrid(np.arange(w), np.arange(h))
    img = np.stack([x * 255 / (w - 1), y * 255 / (h - 1), np.zeros_like(x, float)], 2)
    crop = np.asarray(resize_and_crop(Image.fromarray(np.rint(img).astype(np.uint8)), cfg), float)
    left, top, right, bottom = view_box(size, cfg)
    s = cfg.input_size
    first_col, last_col = crop[s // 2, 0, 0] * (w - 1) / 255, crop[s // 2, -1, 0] * (w - 1) / 255
    first_row, last_row = crop[0, s // 2, 1] * (h - 1) / 255, crop[-1, s // 2, 1] * (h - 1) / 255
    cell_x, cell_y = (right - left) / s, (bottom - top) / s  # original pixels per input pixel
    tol_x, tol_y = 1.5 * max(1.0, cell_x) + (w - 1) / 255, 1.5 * max(1.0, cell_y) + (h - 1) / 255
    assert abs(first_col - (left + cell_x / 2 - 0.5)) <= tol_x and abs(last_col - (right - cell_x / 2 - 0.5)) <= tol_x
    assert abs(first_row - (top + cell_y / 2 - 0.5)) <= tol_y and abs(last_row - (bottom - cell_y / 2 - 0.5)) <= tol_y
    assert right - left == pytest.approx(s * w / max(s, round(w * cfg.resize_size / min(w, h))))
