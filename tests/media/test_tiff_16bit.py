"""16-bit PNG/TIFF, float TIFF and multi-page TIFF: the percentile window, --window, pages as frames."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from wordsight.io.images import decode_image
from wordsight.io.media_options import MediaOptions
from wordsight.io.sources import open_source


def _png16(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr.astype(np.uint16)).save(buf, "PNG")
    return buf.getvalue()


def _expected(arr, lo, hi):
    return np.clip(np.rint((arr.astype(float) - lo) * 255 / (hi - lo)), 0, 255).astype(np.uint8)


def test_16bit_png_goes_through_the_percentile_window():
    arr = np.arange(40 * 50).reshape(40, 50) * 20 + 1000
    arr[0, 0] = 65535  # one hot pixel does not darken the rest
    lo, hi = np.percentile(arr.astype(float), (0.5, 99.5))
    got = np.asarray(decode_image(_png16(arr)))
    assert np.array_equal(got[..., 0], _expected(arr, lo, hi)) and got[0, 0, 0] == 255
    assert np.median(got) > 100  # min-max scaling would put most pixels near 0..40


def test_window_sets_the_range_and_nothing_wraps():
    arr = np.tile(np.arange(256, 768, 2), (8, 1))  # 256..766: a cut to the low byte would wrap at 512
    got = np.asarray(decode_image(_png16(arr), window=(256.0, 766.0)))[..., 0]
    assert np.array_equal(got[0], _expected(arr[0], 256, 766))
    assert np.all(np.diff(got[0].astype(int)) >= 0)  # monotonic: no wrap
    clipped = np.asarray(decode_image(_png16(arr), window=(400.0, 600.0)))[..., 0]
    assert clipped[0, 0] == 0 and clipped[0, -1] == 255


def test_float_tiff_with_nan_and_16bit_rgb_tiff(tmp_path):
    import tifffile

    from wordsight.features.engines.media_frames import tiff_fallback

    f = np.linspace(-1.5, 2.5, 30 * 20, dtype=np.float32).reshape(30, 20)
    f[3, 3] = np.nan
    tifffile.imwrite(tmp_path / "f.tif", f)
    got = np.asarray(decode_image((tmp_path / "f.tif").read_bytes(), window=(-1.0, 2.0)))[..., 0]
    want = _expected(np.nan_to_num(f, nan=-1.0), -1.0, 2.0)
    assert np.array_equal(got, want) and got[3, 3] == 0
    rgb16 = (np.random.default_rng(0).random((16, 24, 3)) * 60000).astype(np.uint16)
    tifffile.imwrite(tmp_path / "rgb16.tif", rgb16, photometric="rgb")
    img = tiff_fallback((tmp_path / "rgb16.tif").read_bytes(), (0.0, 60000.0))
    assert np.array_equal(np.asarray(img), _expected(rgb16, 0, 60000))


def test_multi_page_tiff_pages_are_frames(tmp_path):
    import tifffile

    from wordsight.io.tiff import decode_page

    with tifffile.TiffWriter(tmp_path / "stack.tif") as tw:
        for i in range(4):
            tw.write(np.full((12, 10), 1000 * (i + 1), np.uint16), contiguous=False)
    src = open_source(tmp_path / "stack.tif", media=MediaOptions(window=(0.0, 4000.0)))
    assert [(s.path.kind, s.path.frame, s.path.window) for s in src.samples] == \
        [("tiff", i, (0.0, 4000.0)) for i in range(4)]
    assert [int(decode_page(tmp_path / "stack.tif", i, (0.0, 4000.0))[0, 0, 0]) for i in range(4)] == \
        [64, 128, 191, 255]  # 1000/4000 * 255 = 63.75 -> 64, ...
    assert [s.path.frame for s in open_source(tmp_path / "stack.tif", media=MediaOptions(frame=1)).samples] == [1]


def test_the_window_is_part_of_the_cache_key(tmp_path):
    from wordsight import extract_features

    arr = np.tile(np.arange(0, 4000, 50), (64, 1))[:, :64]
    (tmp_path / "a.png").write_bytes(_png16(arr))
    auto = extract_features(tmp_path / "a.png", "efficientnet-lite0", cache=tmp_path / "c", quiet=True)
    with_window = extract_features(open_source(tmp_path / "a.png", media=MediaOptions(window=(0.0, 10000.0))),
                                   "efficientnet-lite0", cache=tmp_path / "c", quiet=True)
    assert auto.computed == 1 and with_window.computed == 1  # a different window: a different entry
    from wordsight.features.cache import content_hash, feature_key
    from wordsight.features.engines.batch import EmbedBatch

    fn = EmbedBatch("efficientnet-lite0", cache=tmp_path / "c")
    digest = content_hash((tmp_path / "a.png").read_bytes())
    keys = [feature_key(digest, fn.fingerprint, v) for v in ("|win=auto", "|win=0,10000", "")]
    assert set(fn.store.get_many(keys, expect=fn.output_dims())) == set(keys[:2])  # never the 8-bit rule's key
    assert not np.allclose(auto.embeddings, with_window.embeddings, atol=1e-3)


@pytest.mark.parametrize("text", ["1,", "a,b", "5,5", "7,3"])
def test_bad_window_is_refused(text):
    from wordsight.io.media_options import parse_window

    with pytest.raises(ValueError, match="--window"):
        parse_window(text)
