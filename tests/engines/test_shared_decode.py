"""Which models share one decode (features.engines.shared_decode.decode_keys): equal keys exactly
where io.images.decode_image gives the same image for both models' (pixel limit, draft size)."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from wordsight.features.engines.shared_decode import decode_keys
from wordsight.io.images import decode_image


def _bytes(size, fmt: str) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize("size, fmt, shared", [
    ((2000, 1500), "JPEG", False),  # 256 -> 1/4 (500x375), 448 -> 1/2 (1000x750)
    ((1200, 900), "JPEG", True),  # 1/2 for both (600x450)
    ((400, 300), "JPEG", True),  # too small to draft for either
    ((2000, 1500), "PNG", True),  # no draft: the whole image for both
])
def test_two_draft_sizes_share_a_decode_exactly_when_the_decoder_gives_one_image(size, fmt, shared):
    data = _bytes(size, fmt)
    keys = decode_keys(data, {0: (10**8, 256), 1: (10**8, 448)})
    same = np.array_equal(np.asarray(decode_image(data, draft_size=256)), np.asarray(decode_image(data, draft_size=448)))
    assert (keys[0] == keys[1]) is shared is same


def test_equal_wants_share_without_reading_and_limits_never_share():
    assert decode_keys(b"not read", {0: (5, 256), 1: (5, 256), 2: (5, 256)}) == {0: (5, 256), 1: (5, 256), 2: (5, 256)}
    png = _bytes((64, 48), "PNG")
    keys = decode_keys(png, {0: (10**8, 256), 1: (10, 256), 2: (10**8, 183)})
    assert keys[0] == keys[2] != keys[1]  # another pixel limit: its own decode (it may refuse the image)
    bad = decode_keys(b"garbage", {0: (10**8, 256), 1: (10**8, 448)})
    assert bad[0] == bad[1]  # no header: the decode fails the same way for both
