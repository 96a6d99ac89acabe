"""An upload's media kind comes from one probe of its signature: a broken image is never a video."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from wordsight.frontend.upload_media import media_uploads
from wordsight.serve.settings import Limits

from .conftest import photo, write_dicom


def _frames(name, data):
    return media_uploads(name, data, name, Limits(), lambda sample, w, h: (str(sample.path), w, h))


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(photo("chelsea")).save(buf, "JPEG")
    return buf.getvalue()


@pytest.mark.parametrize("data", [_jpeg(), _jpeg()[:300], b"GIF89a-but-not-really", b"\x89PNG\r\n\x1a\nbroken",
                                  b"plain words", b""])
def test_images_broken_or_not_and_unknown_bytes_are_left_to_the_image_checks(data):
    assert _frames("x.bin", data) is None


def test_videos_and_dicom_are_known_by_their_bytes_whatever_their_name(clip, tmp_path):
    import numpy as np

    got = _frames("upload.jpg", clip.read_bytes())  # a video named like an image
    assert got == [(f"upload.jpg#frame={i}", 64, 64) for i in (0, 10, 20)]
    dcm = write_dicom(tmp_path / "IM0001", np.zeros((8, 12), np.uint16)).read_bytes()
    assert _frames("IM0001", dcm) == [("IM0001#frame=0", 12, 8)]
