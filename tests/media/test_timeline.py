"""Per-video summaries: segments with start/end times, shares of time, scores; the report's timeline picture."""
from __future__ import annotations

import numpy as np
import pytest

from wordsight.evaluate.timeline import TimelineCollector, VideoTimeline, format_timeline
from wordsight.io.media_ref import MediaRef


def test_segments_and_shares_of_time():
    # frames sampled every 0.5 s: A A B B B A; each frame lasts until the next, the last one 0.5 s
    v = VideoTimeline("v.mp4", [0, 5, 10, 15, 20, 25], [0.0, 0.5, 1.0, 1.5, 2.0, 2.5], list("AABBBA"))
    segs = [(s.label, s.start_s, s.end_s, s.first_frame, s.last_frame, s.frames) for s in v.segments()]
    assert segs == [("A", 0.0, 1.0, 0, 5, 2), ("B", 1.0, 2.5, 10, 20, 3), ("A", 2.5, 3.0, 25, 25, 1)]
    assert v.shares() == pytest.approx({"B": 0.5, "A": 0.5})
    uneven = VideoTimeline("v.mp4", [0, 10, 40], [0.0, 1.0, 4.0], list("ABB"))  # median step 2.0 for the last
    assert uneven.ends() == [1.0, 4.0, 6.0] and uneven.shares() == pytest.approx({"B": 5 / 6, "A": 1 / 6})
    assert VideoTimeline("v.mp4", [3], [0.3], ["A"]).shares() == {"A": 1.0}


def test_collector_orders_frames_and_keeps_videos_apart():
    c = TimelineCollector()
    for f in (20, 0, 10):
        c.add(MediaRef("b.mp4", "video", f, f / 10), "x" if f else "y", score=f / 100)
    c.add(MediaRef("a.dcm", "dicom", 0), "z")  # no time: not a timeline
    c.add("still.jpg", "z")
    (v,) = c.timelines()
    assert (v.file, v.frames, v.times, v.labels, v.scores) == ("b.mp4", [0, 10, 20], [0.0, 1.0, 2.0],
                                                              ["y", "x", "x"], [0.0, 0.1, 0.2])
    text = format_timeline(v)
    assert "0.00 s -     1.00 s  y  (frames 0-0, 1 sampled)" in text
    assert "share of time: x 66.7%, y 33.3%" in text and "min 0.0000 at 0.00 s" in text


def test_the_report_draws_each_video_timeline(clip, tmp_path, photo_folder):
    from PIL import Image

    from wordsight import Classifier
    from wordsight.evaluate.report import evaluate, write_report

    test = tmp_path / "test"
    for label in ("cat", "coffee"):
        (test / label).mkdir(parents=True)
    (test / "cat" / "clip.mp4").symlink_to(clip)
    Image.open(next((photo_folder / "coffee").glob("*.jpg"))).save(test / "coffee" / "c.jpg")
    clf = Classifier(fusion="image").fit(photo_folder)
    results = evaluate(clf, test, ablation=False, zero_shot=False)
    (tl,) = results["timelines"]
    assert tl["file"] == str(test / "cat" / "clip.mp4") and tl["times"] == [0.0, 1.0, 2.0]
    assert tl["true"] == ["cat"] * 3 and len(tl["scores"]) == 3
    P = clf.predict_proba(clf.extract(test))  # the scores are predict_proba's top probabilities
    np.testing.assert_allclose(sorted(tl["scores"]), sorted(P.max(axis=1)[:3]), atol=1e-6)
    page = write_report(results, tmp_path / "report").read_text()
    assert "Videos over time" in page and "timeline_00.png" in page
    img = Image.open(tmp_path / "report" / "timeline_00.png")
    assert img.size[0] > 600 and img.size[1] > 300
