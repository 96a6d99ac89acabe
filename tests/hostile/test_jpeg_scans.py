"""Issue 28, defect 1: a progressive JPEG with thousands of repeated scans (each scan walks every
block of the image, so decoding time grows with the scan count: 164 s for 5,000 scans of a
6000x6000 image). Refused from its markers before decoding, in the CLI's reader and the server."""
from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest

from .conftest import API_KEY


def progressive(size: int = 1000, extra_scans: int = 0, exif: bytes | None = None) -> bytes:
    """A flat progressive JPEG (libjpeg's 10 scans) with ``extra_scans`` copies of its last scan
    (12 bytes each: a refinement scan of empty blocks, which libjpeg still walks block by block)."""
    from PIL import Image

    buf = io.BytesIO()
    kw = {"exif": exif} if exif else {}
    Image.fromarray(np.full((size, size, 3), 128, np.uint8)).save(buf, "JPEG", progressive=True, **kw)
    data = buf.getvalue()
    last = data.rfind(b"\xff\xda")
    return data[:-2] + data[last:-2] * extra_scans + b"\xff\xd9"


def test_scans_are_counted_from_the_markers():
    from PIL import Image

    from wordsight.io.jpeg_scans import MAX_SCANS, count_scans

    assert MAX_SCANS == 100
    assert count_scans(progressive(64)) == 10  # libjpeg's progressive script for colour
    assert count_scans(progressive(64, 7)) == 17
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (9, 90, 200)).save(buf, "JPEG")
    assert count_scans(buf.getvalue()) == 1  # baseline
    assert count_scans(b"\x89PNG\r\n\x1a\n") == 0
    # an APP segment whose payload holds FF DA bytes (as an EXIF thumbnail does) is skipped whole
    data = progressive(64)
    app = b"\xff\xe9" + (2 + 40).to_bytes(2, "big") + b"\xff\xda" * 20
    assert count_scans(data[:2] + app + data[2:]) == 10
    assert count_scans(progressive(64, 500), stop_after=100) == 101  # stops once past the limit


@pytest.mark.parametrize("scans", [100, 101])
def test_the_limit_is_exact(scans):
    from wordsight.io.images import ImageError, decode_image

    data = progressive(64, scans - 10)
    if scans <= 100:
        assert decode_image(data).size == (64, 64)
    else:
        with pytest.raises(ImageError, match="more than 100 scans"):
            decode_image(data)


def test_large_images_get_a_lower_limit():
    """The work is scans x pixels: 100 scans up to 12 MP, 1.2e9 / pixels above, never below 20."""
    from wordsight.io.jpeg_scans import MAX_SCAN_PIXELS, check_scans, scan_limit

    assert MAX_SCAN_PIXELS == 1_200_000_000
    assert scan_limit(None) == 100 and scan_limit(12_000_000) == 100 and scan_limit(12_000_001) == 99
    assert scan_limit(16_000_000) == 75 and scan_limit(40_000_000) == 30 and scan_limit(89_000_000) == 20
    data = progressive(64, 65)  # 75 scans (only counted here: the pixels are the caller's)
    check_scans(data, 16_000_000)
    with pytest.raises(ValueError, match=r"more than 74 scans \(the limit for 16,200,000 pixels"):
        check_scans(data, 16_200_000)
    check_scans(progressive(64, 10), 10**9)  # 20 scans: what an encoder may write, at any size


def test_cli_reader_refuses_before_decoding_and_names_the_file(tmp_path):
    from wordsight.io.images import ImageError, read_image

    path = tmp_path / "many-scans.jpg"
    path.write_bytes(progressive(1000, 20_000))  # 246 KB; decoding took 35 s on 2 loaded cores
    start = time.monotonic()
    with pytest.raises(ImageError, match=r"many-scans\.jpg: .*more than 100 scans") as err:
        read_image(path)
    assert "\n" not in str(err.value)
    assert time.monotonic() - start < 2


def test_one_bad_file_among_many_is_reported_and_skipped(tmp_path):
    from wordsight.features import extract_features

    (tmp_path / "ok.jpg").write_bytes(progressive(64))
    (tmp_path / "scans.jpg").write_bytes(progressive(1000, 20_000))
    fs = extract_features([str(tmp_path / "ok.jpg"), str(tmp_path / "scans.jpg")], "pixels-32", cache=False)
    assert [s.path for s in fs.samples] == [str(tmp_path / "ok.jpg")]
    assert len(fs.failures) == 1 and "more than 100 scans" in fs.failures[0].reason


def test_server_refuses_it_and_other_clients_are_served_in_time(short_server, photos):
    """short_server answers 504 after 3 s; the hostile upload used to hold the model thread for
    the whole decode, so the normal request sent beside it got a 504 as well."""
    import httpx

    hostile = progressive(1000, 20_000)
    assert len(hostile) < 300_000  # under the server's upload limit
    headers = {"X-API-Key": API_KEY}
    result = {}

    def send_hostile():
        result["r"] = httpx.post(short_server.url + "/v1/predict", headers=headers, timeout=60,
                                 files=[("files", ("scans.jpg", hostile, "image/jpeg"))])

    t = threading.Thread(target=send_hostile)
    t.start()
    time.sleep(0.3)
    start = time.monotonic()
    r = httpx.post(short_server.url + "/v1/predict", headers=headers, timeout=60,
                   files=[("files", ("cat.jpg", photos["cat"], "image/jpeg"))])
    took = time.monotonic() - start
    t.join(60)
    assert r.status_code == 200, r.text
    assert took < 3
    bad = result["r"]
    assert bad.status_code == 422, bad.text
    assert bad.json()["error"] == "too_many_scans" and bad.json()["file"] == "scans.jpg"
    assert bad.json()["detail"].startswith("scans.jpg: ") and "more than 100 scans" in bad.json()["detail"]


def _jpeg_dicom(path, frame: bytes, size: int):
    """A DICOM file (JPEG Baseline transfer syntax) whose one encapsulated frame is ``frame``."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = encapsulate([frame])
    ds.save_as(str(path), enforce_file_format=True)
    return path


def _grey_progressive(size: int, extra_scans: int = 0) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((size, size), 90, np.uint8)).save(buf, "JPEG", progressive=True)
    data = buf.getvalue()
    last = data.rfind(b"\xff\xda")
    return data[:-2] + data[last:-2] * extra_scans + b"\xff\xd9"


def test_a_dicom_jpeg_frame_of_too_many_scans_is_refused_before_decoding(tmp_path):
    from wordsight.features import extract_features

    ok = _jpeg_dicom(tmp_path / "ok.dcm", _grey_progressive(64), 64)
    bad = _jpeg_dicom(tmp_path / "scans.dcm", _grey_progressive(1000, 20_000), 1000)
    start = time.monotonic()
    fs = extract_features([str(ok), str(bad)], "pixels-32", cache=False)
    assert time.monotonic() - start < 10
    assert [s.path.split("#")[0] for s in fs.samples] == [str(ok)]  # the 6-scan frame decodes
    [failure] = fs.failures
    assert "scans.dcm" in failure.path and "frame 0: a progressive JPEG of more than 100 scans" in failure.reason
    limit_frame = _grey_progressive(64, 100 - 6)  # exactly 100 scans: allowed
    fs = extract_features([str(_jpeg_dicom(tmp_path / "edge.dcm", limit_frame, 64))], "pixels-32", cache=False)
    assert len(fs.samples) == 1 and not fs.failures
