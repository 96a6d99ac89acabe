"""Hostile inputs to the multi-view read (features.extract_views, issue 24): a file is read once
for all its views, so a FIFO or a huge-dimension header among the files, or swapped in for a file
after it was read (while another image's views are cut), is never opened nor decoded."""
from __future__ import annotations

import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from wordsight.features import extract_features, extract_views
from wordsight.features.views import tile_view

from .conftest import png, time_limit

ENC = "efficientnet-lite0"


def huge_png(w: int = 50_000, h: int = 50_000) -> bytes:
    """A small PNG whose header (re-checksummed) claims ``w`` x ``h`` pixels."""
    raw = png((8, 8))
    ihdr = b"IHDR" + struct.pack(">II", w, h) + raw[24:29]
    return raw[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + raw[33:]



def _goods(d):
    rng = np.random.default_rng(0)
    out = []
    for i in range(2):
        path = d / f"good{i}.png"
        Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(path)
        out.append(str(path))
    return out


def test_a_fifo_and_a_huge_header_among_the_files_are_refused_once_not_opened(tmp_path, loads):
    goods = _goods(tmp_path)
    fifo, huge = tmp_path / "pipe.jpg", tmp_path / "huge.png"
    os.mkfifo(fifo)
    huge.write_bytes(huge_png())
    views = [(None, ""), *(tile_view(None, 2, i) for i in range(4))]
    with time_limit(60):  # opening the FIFO would block for ever
        sets = extract_views([goods[0], str(fifo), str(huge), goods[1]], ENC, views, cache=False, quiet=True)
    reasons = {os.path.basename(f.path): f.reason for f in sets.failures}
    assert len(sets.failures) == 2 and set(reasons) == {"pipe.jpg", "huge.png"}
    assert "not a regular file" in reasons["pipe.jpg"]
    assert "decompression bomb" in reasons["huge.png"] and "2500000000 pixels" in reasons["huge.png"]
    assert (50_000, 50_000) not in loads  # refused from the header
    assert all(fs.paths == goods for fs in sets)


@pytest.mark.parametrize("swap", ["fifo", "huge header"])
def test_a_file_swapped_after_its_read_is_not_read_again_for_its_other_views(tmp_path, swap, loads):
    goods = _goods(tmp_path)
    victim = goods[1]
    want = [extract_features(goods, ENC, view=fn, view_key=key, cache=False, quiet=True)
            for fn, key in [tile_view(None, 2, i) for i in range(4)]]
    swapped = []

    def swap_then_tile(index):
        fn, _ = tile_view(None, 2, index)

        def view(img):
            if not swapped:  # the first view cut: replace the other file on disk
                swapped.append(True)
                os.unlink(victim)
                if swap == "fifo":
                    os.mkfifo(victim)
                else:
                    with open(victim, "wb") as f:
                        f.write(huge_png())
            return fn(img)

        return view

    views = [(swap_then_tile(i), tile_view(None, 2, i)[1]) for i in range(4)]
    with time_limit(60):
        sets = extract_views(goods, ENC, views, cache=False, quiet=True)
    assert swapped and not sets.failures
    assert (50_000, 50_000) not in loads
    for fs, one in zip(sets, want):  # every view of the swapped file: the bytes read before the swap
        assert fs.paths == goods
        np.testing.assert_allclose(fs.embeddings, one.embeddings, rtol=1e-5, atol=1e-5)
