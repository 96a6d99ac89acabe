"""``wordsight explain`` on a video, a multi-frame DICOM and a multi-page TIFF: frames read as
predict reads them (the frame options honoured), a heatmap per sampled frame named by the frame,
rows with ``path``, ``frame`` and ``time_s``, and the probabilities ``predict_proba`` computes for
the same frames (the parity test of tests/parity/test_verbs_parity.py, for frames)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from wordsight.cli import main
from wordsight.estimator import load_model_folder
from wordsight.io.media_options import MediaOptions
from wordsight.io.sources import open_source

from .conftest import photo, write_dicom

ATOL = 1e-5


@pytest.fixture(scope="module")
def model(photo_folder, tmp_path_factory):
    folder = tmp_path_factory.mktemp("explain-frames") / "model"
    assert main(["fit", str(photo_folder), "--out", str(folder), "--quiet"]) == 0  # the default: prior fusion
    return folder


@pytest.fixture(scope="module")
def stills(tmp_path_factory):
    """A 3-frame DICOM (grey cat, coffee, rocket) and a 2-page 16-bit TIFF (coffee, cat)."""
    import tifffile

    d = tmp_path_factory.mktemp("stills")
    grey = np.stack([photo(n)[..., 1] for n in ("chelsea", "coffee", "rocket")]).astype(np.uint16) * 200
    write_dicom(d / "series.dcm", grey)
    with tifffile.TiffWriter(d / "pages.tif") as tw:
        for n in ("coffee", "chelsea"):
            tw.write(photo(n).astype(np.uint16) * 257, photometric="rgb")
    return d


def _columns(pairs, classes):
    d = {str(c): p for c, p in pairs}
    return np.array([d[str(c)] for c in classes])


def _explain(capsys, argv):
    capsys.readouterr()
    rc = main(["explain", *argv])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out, err


def test_explain_reads_the_frames_predict_reads_and_reports_predict_proba(model, clip, stills, tmp_path, capsys):
    out = tmp_path / "x"
    _explain(capsys, [str(model), str(clip), str(stills / "series.dcm"), str(stills / "pages.tif"),
                      "--every", "10", "--out", str(out)])
    records = json.loads((out / "evidence.json").read_text())
    want_rows = [(str(clip), i, i / 10) for i in (0, 10, 20)] + \
        [(str(stills / "series.dcm"), i, None) for i in range(3)] + [(str(stills / "pages.tif"), i, None) for i in range(2)]
    assert [(r["path"], r["frame"], r["time_s"]) for r in records] == want_rows

    clf = load_model_folder(model)
    classes = [str(c) for c in clf.classes_]
    samples = open_source([clip, stills / "series.dcm", stills / "pages.tif"],
                          media=MediaOptions(sample="every", every=10)).samples
    want = clf.predict_proba(samples)
    got = np.array([_columns(r["top_k"], classes) for r in records])
    np.testing.assert_allclose(got, want, atol=ATOL)
    assert [r["predicted"] for r in records] == [classes[i] for i in want.argmax(1)]
    assert [r["predicted"] for r in records[:3]] == ["cat", "coffee", "cat"]  # the clip's segments
    # predict's rows for the same frames: the same probabilities
    rows_file = tmp_path / "p.jsonl"
    assert main(["predict", str(model), str(clip), "--every", "10", "--top-k", str(len(classes)),
                 "--out", str(rows_file), "--quiet"]) == 0
    rows = [json.loads(line) for line in rows_file.read_text().splitlines()]
    np.testing.assert_allclose([_columns(((t["class"], t["probability"]) for t in r["top_k"]), classes)
                                for r in rows], got[:3], atol=ATOL)
    # a heatmap per sampled frame, named by the frame, at the frame's size
    for i in (0, 10, 20):
        heat = np.load(out / f"clip.frame{i}.gradcam.npy")
        assert heat.shape == (64, 64) and heat.max() > 0
        assert (out / f"clip.frame{i}.gradcam.png").is_file()
    assert (out / "series.frame2.gradcam.png").is_file() and (out / "pages.frame1.gradcam.npy").is_file()
    assert not list(out.glob("clip.gradcam*"))


def test_fps_and_frame_choose_the_frames_as_predict_does(model, clip, stills, tmp_path, capsys):
    out = tmp_path / "x"
    stdout, _ = _explain(capsys, [str(model), str(clip), str(stills / "series.dcm"), "--fps", "0.7", "--frame", "1",
                                  "--method", "lime", "--lime-samples", "10", "--out", str(out)])
    records = json.loads((out / "evidence.json").read_text())
    assert [(r["frame"], r["time_s"]) for r in records] == [(0, 0.0), (14, 1.4), (1, None)]
    assert f"{clip}#frame=14: coffee" in stdout


def test_a_frame_that_cannot_be_listed_is_one_line_and_the_rest_explained(model, clip, tmp_path, capsys):
    (tmp_path / "cut.mp4").write_bytes(clip.read_bytes()[:400])
    out = tmp_path / "x"
    capsys.readouterr()
    assert main(["explain", str(model), str(tmp_path / "cut.mp4"), str(clip), "--every", "20",
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"{tmp_path / 'cut.mp4'}: cannot read the video container" in err
    assert [r["frame"] for r in json.loads((out / "evidence.json").read_text())] == [0, 20]


def test_a_16bit_image_is_explained_through_the_window_predict_uses(model, tmp_path, capsys):
    from PIL import Image

    grey = photo("chelsea")[..., 1].astype(np.uint16) * 120  # 0..30,600
    Image.fromarray(grey).save(tmp_path / "deep.png")  # 16-bit grey PNG
    out = tmp_path / "x"
    _explain(capsys, [str(model), str(tmp_path / "deep.png"), "--window", "0,4000", "--out", str(out)])
    [record] = json.loads((out / "evidence.json").read_text())
    assert record["path"] == str(tmp_path / "deep.png") and "frame" not in record
    clf = load_model_folder(model)
    classes = [str(c) for c in clf.classes_]
    windowed = clf.predict_proba(open_source(tmp_path / "deep.png", media=MediaOptions(window=(0, 4000))).samples)
    auto = clf.predict_proba([str(tmp_path / "deep.png")])
    np.testing.assert_allclose(_columns(record["top_k"], classes), windowed[0], atol=ATOL)
    assert np.abs(windowed - auto).max() > 0.01  # the window mattered (most of the cat saturates at 4,000)
    assert (out / "deep.gradcam.png").is_file()
