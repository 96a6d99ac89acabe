"""Hostile inputs to the automatic view choice (features.views.choose_view_of_samples), which now
decodes large JPEGs drafted: a FIFO, a huge-dimension header, a truncated JPEG and an empty file
among the images are skipped without blocking or decoding their claimed pixels, and the choice is
the good images' (they fail later, with their reason, in extraction)."""
from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image, ImageFile

from wordsight.features.views import choose_view_of_samples
from wordsight.io.sources import Sample

from .conftest import time_limit
from .test_multi_view_inputs import huge_png


def _dark_jpeg(size=(2400, 1600)) -> bytes:
    a = np.zeros((size[1], size[0], 3), np.uint8)
    a[400:1200, 600:1800] = 220  # a light object on black
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_bad_files_among_the_sampled_images_are_skipped_unopened(tmp_path, monkeypatch):
    loaded = []
    real = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: loaded.append(self.size) or real(self))
    good = _dark_jpeg()
    paths = {}
    for name, data in {"a.jpg": good, "huge.png": huge_png(), "trunc.jpg": good[: len(good) // 3],
                       "empty.jpg": b"", "b.jpg": good}.items():
        (tmp_path / name).write_bytes(data)
        paths[name] = str(tmp_path / name)
    os.mkfifo(tmp_path / "pipe.jpg")
    samples = [Sample(paths["a.jpg"]), Sample(str(tmp_path / "pipe.jpg")), Sample(paths["huge.png"]),
               Sample(paths["trunc.jpg"]), Sample(paths["empty.jpg"]), Sample(paths["b.jpg"])]
    with time_limit(60):  # opening the FIFO would block for ever
        assert choose_view_of_samples(samples) == "light-background"  # the good images decide
    assert (50_000, 50_000) not in loaded and max(w * h for w, h in loaded) <= 600 * 400  # drafted, bounded
    with time_limit(60):  # a bad file before the good ones: skipped, the good ones still read
        assert choose_view_of_samples([samples[1], samples[3], samples[0]]) == "light-background"
    with time_limit(60):  # the bad files alone: nothing to judge, the plain view
        assert choose_view_of_samples(samples[1:5]) == "plain"
