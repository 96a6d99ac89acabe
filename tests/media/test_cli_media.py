"""The verbs on media: `wordsight formats`, zeroshot's per-video summary, a detector's score over time."""
from __future__ import annotations

import json

import pytest

from wordsight.cli import main


def test_formats_lists_what_is_readable_and_what_adds_the_rest(capsys):
    assert main(["formats"]) == 0
    out = capsys.readouterr().out
    for line in ("yes  image", "yes  video", "yes  dicom", "yes  tiff pages"):
        assert line in out
    assert ".mp4" in out and ".dcm" in out and "PyAV" in out and "pydicom" in out and "tifffile" in out


def test_zeroshot_prints_the_video_summary(clip, capsys):
    assert main(["zeroshot", str(clip), "--classes", "cat,coffee", "--fps", "2", "--quiet"]) == 0
    out, err = capsys.readouterr()
    rows = [line.split("\t")[:2] for line in out.splitlines() if "\t" in line]
    assert rows == [[f"{clip}#frame={i}", "cat" if i < 10 or i >= 20 else "coffee"] for i in range(0, 30, 5)]
    assert f"{clip}: 6 frame(s) sampled over 3.00 s" in err
    assert "1.00 s -     2.00 s  coffee  (frames 10-15, 2 sampled)" in err
    assert "share of time: cat 66.7%, coffee 33.3%" in err


def test_a_detector_scores_frames_over_time(clip, tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from .conftest import photo

    (tmp_path / "normal").mkdir()
    for i in range(5):  # the cat, shifted: what normal looks like
        Image.fromarray(np.roll(photo("chelsea", 96), 4 * i, axis=i % 2)).save(tmp_path / "normal" / f"{i}.png")
    assert main(["fit", str(tmp_path / "normal"), "--task", "anomaly", "--out", str(tmp_path / "det"), "--quiet"]) == 0
    out = tmp_path / "scores.jsonl"
    assert main(["predict", str(tmp_path / "det"), str(clip), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["path"], r["frame"], r["time_s"]) for r in rows] == [(str(clip), i, i / 10) for i in (0, 10, 20)]
    scores = [r["score"] for r in rows]
    assert scores[1] < min(scores[0], scores[2])  # the coffee second is the least like the normal cat
    assert "score over time: min" in printed and f"at 1.00 s, median {sorted(scores)[1]:.4f}" in printed
    assert "0.0s:" in printed and "2.0s:" in printed


@pytest.mark.parametrize("bad", [["--window", "3,1"], ["--fps", "0"], ["--every", "0"]])
def test_bad_media_options_are_one_line(clip, bad, capsys, tmp_path):
    assert main(["embed", str(clip), "--out", str(tmp_path / "x.parquet"), *bad]) == 1
    err = capsys.readouterr().err
    assert err.startswith("wordsight embed: error: --") and len(err.strip().splitlines()) == 1
