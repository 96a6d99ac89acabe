"""The exported runner's preprocessing (standalone: numpy and Pillow only) against the extraction's
own, image by image, without ONNX: non-square, tiny by either side, JPEG draft sizes, EXIF
rotation, alpha, palette, 16-bit and grey images. Fast, so that the mutation run covers the runner."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from wordsight.export import runner
from wordsight.features.engines.batch import TINY_FRACTION, EmbedBatch


@pytest.fixture(scope="module")
def lite0():
    batch = EmbedBatch("efficientnet-lite0", cache=False)
    small = batch.small_config()
    cfg = batch.config
    enc = {"preprocessing": cfg.preprocessing(),
           "tiny": {"max_side": cfg.input_size // TINY_FRACTION, "preprocessing": small.preprocessing()}}
    return batch, enc


def _encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _photo(w, h, mode="RGB", seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / max(w - 1, 1), yy * 255 / max(h - 1, 1), (xx + yy) % 256], -1)
    a = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(a, "RGB").convert(mode) if mode != "RGB" else Image.fromarray(a, "RGB")


def _exif_rotated() -> bytes:
    img = _photo(90, 60, seed=3)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    return _encode(img, "JPEG", exif=exif.tobytes(), quality=92)


def _sixteen_bit() -> bytes:
    a = (np.arange(40 * 70, dtype=np.uint16).reshape(40, 70) * 9 + 1000).astype(np.uint16)
    img = Image.fromarray(a)
    assert img.mode == "I;16"
    return _encode(img)


def _hot_pixel() -> bytes:
    a = np.linspace(200, 900, 50 * 60).reshape(50, 60).astype(np.uint16)
    a[3, 4] = 65535  # one hot pixel: the percentile window ignores it
    return _encode(Image.fromarray(a))


def _float_with_nan_and_inf() -> bytes:
    a = np.linspace(-1.0, 3.0, 40 * 50, dtype=np.float32).reshape(40, 50)
    a[0, :5], a[1, :3], a[2, :2] = np.nan, np.inf, -np.inf
    return _encode(Image.fromarray(a, "F"), "TIFF")


def _transparent(mode: str) -> bytes:
    a = np.asarray(_photo(60, 40, "RGBA", seed=12)).copy()
    a[:, :20, 3] = 0  # a transparent band over coloured pixels: it must come out white
    a[:, 20:30, 3] = 128
    return _encode(Image.fromarray(a, "RGBA").convert(mode))


def _palette_with_transparency() -> bytes:
    img = _photo(64, 48, seed=4).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return _encode(img, transparency=0)


CASES = {
    "square-28": lambda: _encode(_photo(28, 28)),
    "tall-tiny-40x150": lambda: _encode(_photo(40, 150, seed=1)),
    "wide-tiny-150x40": lambda: _encode(_photo(150, 40, seed=2)),
    "edge-56x300": lambda: _encode(_photo(56, 300, seed=5)),
    "edge-57x300": lambda: _encode(_photo(57, 300, seed=6)),
    "wide-300x57": lambda: _encode(_photo(300, 57, seed=7)),
    "tall-photo-jpeg-600x1400": lambda: _encode(_photo(600, 1400, seed=8), "JPEG", quality=90),
    "wide-photo-jpeg-1400x600": lambda: _encode(_photo(1400, 600, seed=9), "JPEG", quality=90),
    "exif-rotated-jpeg": _exif_rotated,
    "rgba": lambda: _encode(_photo(80, 50, "RGBA", seed=10)),
    "rgba-transparent": lambda: _transparent("RGBA"),
    "la-transparent": lambda: _transparent("LA"),
    "grey": lambda: _encode(_photo(70, 90, "L", seed=11)),
    "sixteen-bit": _sixteen_bit,
    "sixteen-bit-hot-pixel": _hot_pixel,
    "float-nan-inf-tiff": _float_with_nan_and_inf,
    "palette-transparent": _palette_with_transparency,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_runner_preprocessing_equals_extraction(lite0, case):
    batch, enc = lite0
    data = CASES[case]()
    want, err = batch.decode_for_model(data)
    assert err is None, err
    pre = runner.choose(data, enc)
    got = runner.preprocess(runner.decode(data, pre["resize_size"]), pre)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_tiny_images_run_at_the_small_input_size(lite0):
    _, enc = lite0
    small, full = enc["tiny"]["preprocessing"]["input_size"], enc["preprocessing"]["input_size"]
    assert small < full
    for case, size in (("tall-tiny-40x150", small), ("wide-tiny-150x40", small), ("edge-56x300", small),
                       ("edge-57x300", full), ("wide-300x57", full)):
        data = CASES[case]()
        pre = runner.choose(data, enc)
        assert runner.preprocess(runner.decode(data, pre["resize_size"]), pre).shape == (3, size, size), case
