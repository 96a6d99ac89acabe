"""DICOM: the display pipeline (rescale, window, MONOCHROME1, colour), frames, pydicom's own test
files, and no patient or study tag anywhere."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

from wordsight.io.media_options import MediaOptions
from wordsight.io.sources import open_source

from .conftest import write_dicom

SECRETS = ("Doe", "Jane", "Secret", "PATIENT-4711", "STUDY-OF-JANE", "Privacy Hospital")


def _ramp(dtype=np.uint16, frames=None):
    base = (np.arange(48 * 64).reshape(48, 64) * 3).astype(dtype)
    return base if frames is None else np.stack([base + 100 * i for i in range(frames)]).astype(dtype)


def test_rescale_then_the_files_window(tmp_path):
    from wordsight.io.dicom import decode_frame

    px = _ramp()
    path = write_dicom(tmp_path / "ct.dcm", px, RescaleSlope=2, RescaleIntercept=-1000, WindowCenter=1500,
                       WindowWidth=4000)
    hu = px.astype(float) * 2 - 1000
    lo, hi = 1500 - 2000, 1500 + 2000
    want = np.clip(np.rint((hu - lo) * 255 / (hi - lo)), 0, 255).astype(np.uint8)
    got = decode_frame(path)
    assert got.shape == (48, 64, 3) and np.array_equal(got[..., 0], want) and np.array_equal(got[..., 2], want)
    # --window min,max is in modality units (after the rescale) and replaces the file's window
    got = decode_frame(path, window=(0.0, 1000.0))
    assert np.array_equal(got[..., 0], np.clip(np.rint(hu * 255 / 1000), 0, 255).astype(np.uint8))


def test_without_a_window_the_percentile_window_and_monochrome1_inverted(tmp_path):
    from wordsight.io.dicom import decode_frame

    px = _ramp()
    lo, hi = np.percentile(px.astype(float), (0.5, 99.5))
    want = np.clip(np.rint((px - lo) * 255 / (hi - lo)), 0, 255).astype(np.uint8)
    assert np.array_equal(decode_frame(write_dicom(tmp_path / "m2.dcm", px))[..., 1], want)
    inverted = decode_frame(write_dicom(tmp_path / "m1.dcm", px, "MONOCHROME1"))[..., 1]
    assert np.array_equal(inverted, 255 - want)


def test_rgb_passes_through(tmp_path):
    from wordsight.io.dicom import decode_frame

    rgb = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    assert np.array_equal(decode_frame(write_dicom(tmp_path / "rgb.dcm", rgb, "RGB")), rgb)


def test_multi_frame_files_are_frames(tmp_path):
    from wordsight.io.dicom import decode_frame

    path = write_dicom(tmp_path / "cine.dcm", _ramp(frames=3), WindowCenter=3000, WindowWidth=6000)
    src = open_source(path, media=MediaOptions())
    assert [(s.path.kind, s.path.frame, s.path.time_s) for s in src.samples] == [("dicom", i, None) for i in range(3)]
    assert [s.path.frame for s in open_source(path, media=MediaOptions(frame=2)).samples] == [2]
    f0, f2 = decode_frame(path, 0)[..., 0].astype(int), decode_frame(path, 2)[..., 0].astype(int)
    # 200 stored levels higher through a 6000-wide window: 200 * 255 / 6000 = 8.5 grey levels
    assert 8 <= np.median(f2 - f0) <= 9
    bad = open_source(path, media=MediaOptions(frame=3))
    assert not bad.samples and "--frame 3 does not exist (the file has 3 frame(s))" in bad.problems[0].reason


def test_every_pydicom_test_file_is_read_or_refused_with_a_reason():
    from pydicom.data import get_testdata_files

    from wordsight.io.dicom import decode_frame, probe
    from wordsight.io.images import ImageError, check_size

    read, refused = 0, {}
    files = [f for f in get_testdata_files() if os.path.isfile(f)]
    assert len(files) > 150
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f in files:
            try:  # what listing and decoding a .dcm file do: the header, the size limits, frame 0
                info = probe(f)
                check_size(info.width, info.height)
                px = decode_frame(f, 0)
            except ImageError as e:
                refused[f] = str(e)
                continue
            except Exception as e:  # noqa: BLE001 - what the test is for: nothing else may escape
                pytest.fail(f"{f}: {type(e).__name__}: {e}")
            assert px.dtype == np.uint8 and px.ndim == 3 and px.shape[2] == 3, f
            read += 1
    assert read >= 60, (read, len(refused))
    assert all(r and len(r) < 400 and "\n" not in r for r in refused.values())
    assert sum("no pixel data" in r for r in refused.values()) >= 50


def test_no_patient_or_study_tag_leaves_the_file(tmp_path, capsys):
    from wordsight.cli import main

    folder = tmp_path / "scans"
    folder.mkdir()
    write_dicom(folder / "a.dcm", _ramp(), WindowCenter=3000, WindowWidth=6000)
    write_dicom(folder / "b.dcm", _ramp(frames=2))
    write_dicom(folder / "empty.dcm", _ramp(), no_pixels=True)
    cache = tmp_path / "cache"
    out = tmp_path / "rows.jsonl"
    rc = main(["embed", str(folder), "--out", str(tmp_path / "emb.parquet"), "--cache-dir", str(cache), "--quiet"])
    rc2 = main(["describe", str(folder), "--out", str(out), "--cache-dir", str(cache), "--quiet"])
    printed = capsys.readouterr()
    assert rc == 0 and rc2 == 0
    texts = [printed.out, printed.err, out.read_text()]
    blobs = [p.read_bytes() for p in [*cache.rglob("*"), tmp_path / "emb.parquet"] if p.is_file()]
    for secret in SECRETS:
        assert all(secret not in t for t in texts), secret
        assert all(secret.encode() not in b for b in blobs), secret
    assert "empty.dcm: no pixel data" in printed.err
    assert out.read_text().count('"frame"') == 3  # a.dcm's one frame, b.dcm's two
