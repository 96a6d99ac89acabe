"""Hostile media in one folder: a truncated video, a video with no video stream, a 10-hour video at
--fps 30, a DICOM without pixel data, a DICOM whose compressed syntax nothing installed decodes, a
TIFF of 10,000 pages. Each is one line naming the file and the reason, before any pixel is
decoded; the good image beside them is embedded; nothing hangs."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from .conftest import png, time_limit


def _encode(path, codec: str, rate: int, frames, time_base=None):
    """A 64x64 video of ``frames`` ((RGB array, pts or None), ...) with ``codec``: the setup both
    hostile videos share."""
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate)
        s.width = s.height = 64
        s.pix_fmt = "yuv420p"
        if time_base is not None:
            s.codec_context.time_base = time_base
        for pixels, pts in frames:
            f = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            if pts is not None:
                f.pts, f.time_base = pts, time_base
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def _long_video(path):
    """Two frames 10 hours apart: a 5 kB file whose header says 36,000 s at 30 frames/s."""
    black = np.zeros((64, 64, 3), np.uint8)
    return _encode(path, "mpeg4", 30, [(black, 0), (black, 36_000)], time_base=Fraction(1, 1))


def _audio_only(path):
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("pcm_s16le", rate=8000)
        s.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def _truncated_mp4(path):
    _encode(path, "libx264", 10, [(np.full((64, 64, 3), 10 * i, np.uint8), None) for i in range(20)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the mp4 index (moov) is written last: gone
    return path


def _dicom(path, syntax=None, pixels=True):
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    meta.TransferSyntaxUID = syntax or ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.PatientName, ds.PatientID = "Roe^Richard", "PID-0042"
    ds.Rows = ds.Columns = 16
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    if pixels:
        ds.PixelData = encapsulate([b"\xff\xd8not-a-real-frame\xff\xd9"]) if syntax else bytes(256)
    ds.save_as(str(path), enforce_file_format=True)
    return path


def _many_pages(path, n=10_000):
    import tifffile

    with tifffile.TiffWriter(path) as tw:
        for _ in range(n):
            tw.write(np.zeros((2, 2), np.uint8), contiguous=False)
    return path


@pytest.fixture(scope="module")
def hostile_media(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile-media")
    (d / "good.png").write_bytes(png((64, 48)))
    _truncated_mp4(d / "truncated.mp4")
    _audio_only(d / "audio.mkv")
    _long_video(d / "ten-hours.mkv")
    _dicom(d / "no-pixels.dcm", pixels=False)
    _dicom(d / "mpeg2.dcm", syntax="1.2.840.10008.1.2.4.100")
    _many_pages(d / "pages.tif")
    return d


def test_each_bad_file_is_one_line_and_the_good_image_is_embedded(hostile_media, tmp_path, capsys):
    from wordsight.cli import main

    out = tmp_path / "e.parquet"
    with time_limit(120):
        rc = main(["embed", str(hostile_media), "--fps", "30", "--out", str(out), "--no-cache", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 0
    lines = {line.split(": ", 1)[0].strip(): line for line in err.splitlines() if ": " in line}
    d = hostile_media
    assert "cannot read the video container" in lines[f"{d / 'truncated.mp4'}"]
    assert "no video stream (streams: audio)" in lines[f"{d / 'audio.mkv'}"]
    assert ("1,080,000 frames to sample (36,000 s at --fps 30), more than the limit of 100,000 (--max-frames)"
            in lines[f"{d / 'ten-hours.mkv'}"])
    assert "no pixel data" in lines[f"{d / 'no-pixels.dcm'}"]
    assert "MPEG2" in lines[f"{d / 'mpeg2.dcm'}"] and "not an image syntax" in lines[f"{d / 'mpeg2.dcm'}"]
    assert "more than 1,000 pages" in lines[f"{d / 'pages.tif'}"]
    assert "Roe" not in err and "PID-0042" not in err
    import pyarrow.parquet as pq

    table = pq.read_table(out)
    ok = [p for p, s in zip(table.column("path").to_pylist(), table.column("status").to_pylist()) if s == "ok"] \
        if "status" in table.column_names else table.column("path").to_pylist()
    assert ok == [str(d / "good.png")]


def test_a_syntax_whose_plugin_is_missing_names_the_syntax(tmp_path):
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEGLSLossless

    from wordsight.io.sources import open_source

    if get_decoder(JPEGLSLossless).is_available:
        pytest.skip("a JPEG-LS plugin is installed here")
    src = open_source(_dicom(tmp_path / "jls.dcm", syntax=JPEGLSLossless))
    assert not src.samples
    assert src.problems[0].reason.startswith("compressed transfer syntax JPEG-LS Lossless Image Compression "
                                             "(1.2.840.10008.1.2.4.80) that no installed plugin decodes")


def test_the_limits_can_be_raised_and_a_page_chosen(hostile_media):
    from wordsight.io.media_options import MediaOptions
    from wordsight.io.sources import open_source

    with time_limit(30):
        src = open_source(hostile_media / "pages.tif", media=MediaOptions(frame=9_999))
    assert [s.path.frame for s in src.samples] == [9_999]
    with time_limit(30):
        src = open_source(hostile_media / "ten-hours.mkv", media=MediaOptions(fps=1 / 3600))
    assert [s.path.time_s for s in src.samples] == [3600.0 * i for i in range(10)]


@pytest.mark.parametrize("name, status, code, words", [
    ("ten-hours.mkv", 413, "video_too_long", "36,000.0 s of video, longer than the limit of 600 s"),
    ("audio.mkv", 422, "unreadable_video", "no video stream (streams: audio)"),
    ("no-pixels.dcm", 422, "unreadable_dicom", "no pixel data"),
    ("mpeg2.dcm", 422, "unreadable_dicom", "not an image syntax pydicom decodes"),
    ("truncated.mp4", 415, "not_an_image", "not a recognised image format"),
])
def test_the_server_refuses_bad_media_uploads_from_their_headers(client, hostile_media, name, status, code, words):
    with time_limit(60):
        r = client.post("/v1/predict", files=[("files", (name, (hostile_media / name).read_bytes()))])
    assert r.status_code == status, r.text
    body = r.text
    assert code in body and words in body and name in body
    assert "Roe" not in body and "PID-0042" not in body


def test_extension_less_files_only_dicom_magic_is_listed_and_nothing_blocks(tmp_path):
    """Beside a good unnamed DICOM: a text file and a PNG without extension (skipped silently as
    before), a FIFO named like a DICOM export file (never opened for reading: no hang), a link to
    /dev/zero, a dangling link, and a file with the DICM magic and garbage after it (listed, then
    one line naming it)."""
    import os

    from wordsight.io.sources import open_source

    d = tmp_path / "export"
    d.mkdir()
    _dicom(d / "IM0001")
    (d / "README").write_text("not an image")
    (d / "IM0002").write_bytes(png((16, 16)))
    (d / "IM0003").write_bytes(b"\0" * 128 + b"DICM" + bytes(range(256)) * 3)
    os.mkfifo(d / "IM0004")
    os.symlink("/dev/zero", d / "IM0005")
    os.symlink(d / "missing", d / "IM0006")
    with time_limit(30):
        src = open_source(d)
    assert [(s.path.file, s.path.frame) for s in src.samples] == [(str(d / "IM0001"), 0)]
    assert [p.path for p in src.problems] == [str(d / "IM0003")]
    assert "no pixel data" in src.problems[0].reason or "not a readable DICOM" in src.problems[0].reason
    assert "Roe" not in str(src.problems)


def test_explain_says_each_bad_file_in_one_line_and_explains_the_good_image(hostile_media, tmp_path, capsys):
    """``explain`` lists files as ``predict`` does: the hostile folder's media are refused from their
    headers (one line each, the file named), the good image is explained, nothing hangs."""
    import json

    from wordsight.cli import main

    out = tmp_path / "x"
    with time_limit(180):
        rc = main(["explain", "efficientnet-lite0", str(hostile_media), "--fps", "30", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 0, err
    d = hostile_media
    for name, words in (("truncated.mp4", "cannot read the video container"), ("audio.mkv", "no video stream"),
                        ("ten-hours.mkv", "1,080,000 frames to sample"), ("no-pixels.dcm", "no pixel data"),
                        ("mpeg2.dcm", "not an image syntax"), ("pages.tif", "more than 1,000 pages")):
        assert any(line.strip().startswith(f"{d / name}: ") and words in line for line in err.splitlines()), name
    assert "Roe" not in err and "PID-0042" not in err
    assert [r["path"] for r in json.loads((out / "evidence.json").read_text())] == [str(d / "good.png")]


def test_finetune_reports_each_bad_media_file_and_trains_on_the_rest(hostile_media, tmp_path):
    """Fine-tuning lists frames as ``fit`` does: every hostile file of a labelled tree is a failure
    with its reason (limits checked from the headers, nothing decoded past them), the good images train."""
    import os

    from wordsight.io.media_options import MediaOptions, use_media_options
    from wordsight.training.finetune import FinetuneOptions, finetune

    root = tmp_path / "tree"
    (root / "bad").mkdir(parents=True)
    (root / "other").mkdir()
    for f in hostile_media.iterdir():
        os.symlink(f, root / "bad" / f.name)
    (root / "other" / "blue.png").write_bytes(png((64, 48), (20, 30, 200)))
    with time_limit(180), use_media_options(MediaOptions(fps=30)):
        r = finetune(root, "efficientnet-lite0", tmp_path / "run",
                     FinetuneOptions(epochs=1, batch_size=2, val_fraction=0.0, blocks=1), quiet=True)
    failed = {os.path.basename(f.path): f.reason for f in r.failures}
    assert set(failed) == {"truncated.mp4", "audio.mkv", "ten-hours.mkv", "no-pixels.dcm", "mpeg2.dcm", "pages.tif"}
    assert "1,080,000 frames to sample" in failed["ten-hours.mkv"] and "no pixel data" in failed["no-pixels.dcm"]
    assert r.steps == 1 and r.classes == ["bad", "other"]
    assert "Roe" not in str(r.failures) and "PID-0042" not in str(r.failures)
