"""DICOM files named without an extension (``IM0001``, a UID) are listed from folders by their magic."""
from __future__ import annotations

import shutil

import numpy as np

from wordsight.io.sources import from_folder, open_source

from .conftest import write_dicom

UID = "1.2.840.113619.2.55.3.604688119.969.1268071029.320"


def _ramp():
    return (np.arange(32 * 40).reshape(32, 40) * 7).astype(np.uint16)


def test_extension_less_dicom_files_are_listed_and_other_unnamed_files_are_not(tmp_path):
    export = tmp_path / "export" / "series1"
    export.mkdir(parents=True)
    write_dicom(export / "IM0001", _ramp())
    write_dicom(export / UID, _ramp()[::-1].copy())
    write_dicom(export / "DICOMDIR", _ramp())  # an export's index: never an image, even with pixels
    (export / "README").write_text("exported by the PACS\n" * 20)
    (export / "notes.1").write_bytes(b"\0" * 200)  # numeric extension, no magic
    src = from_folder(tmp_path / "export")
    assert sorted(s.path for s in src.samples) == sorted([str(export / "IM0001"), str(export / UID)])
    assert {s.label for s in src.samples} == {"series1"} and src.problems == []
    listed = open_source(tmp_path / "export")
    assert [(s.path.file, s.path.kind, s.path.frame) for s in listed.samples] == [
        (str(export / UID), "dicom", 0), (str(export / "IM0001"), "dicom", 0)]


def test_an_unnamed_dicom_reads_as_the_same_file_named_dcm(tmp_path):
    from wordsight import extract_features

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    named = write_dicom(tmp_path / "a" / "ct.dcm", _ramp())
    shutil.copy(named, tmp_path / "b" / "IM0007")
    shutil.copy(named, tmp_path / "b" / "top.png.dcm-less")  # an unknown extension: not sniffed, not listed
    fa = extract_features(tmp_path / "a", "pixels-32", cache=False, quiet=True)
    fb = extract_features(tmp_path / "b", "pixels-32", cache=False, quiet=True)
    assert [str(p) for p in fb.paths] == [f"{tmp_path / 'b' / 'IM0007'}#frame=0"]
    np.testing.assert_array_equal(fa.embeddings, fb.embeddings)


def test_a_file_given_by_name_is_sniffed_too(tmp_path):
    path = write_dicom(tmp_path / "IM0001", _ramp())
    src = open_source([path])
    assert [(s.path.kind, s.path.frame) for s in src.samples] == [("dicom", 0)]


def test_signatures_tell_images_videos_and_dicom_apart(clip):
    from wordsight.io.signatures import kind_of, unnamed

    assert kind_of(clip.read_bytes()[:512]) == "video"
    assert kind_of(b"\x89PNG\r\n\x1a\n" + b"\0" * 100) == "image"
    assert kind_of(b"\xff\xd8\xff\xe0broken") == "image"
    assert kind_of(b"\0" * 128 + b"DICM") == "dicom"
    assert kind_of(b"\0" * 127 + b"DICM") is None and kind_of(b"hello") is None
    assert kind_of(b"RIFF\0\0\0\0AVI LIST") == "video" and kind_of(b"RIFF\0\0\0\0WEBPVP8 ") == "image"
    assert kind_of(b"\x1a\x45\xdf\xa3" + b"\0" * 40) == "video"
    ts = bytearray(600)
    ts[0] = ts[188] = ts[376] = 0x47
    assert kind_of(bytes(ts)) == "video" and kind_of(bytes(ts[:300])) is None
    assert unnamed("IM0001") and unnamed(UID) and unnamed(".hidden") and not unnamed("a.dcm")
    assert not unnamed("clip.mp4") and not unnamed("x.1a")
