"""Video files as rows of frames: sampling, time codes, streaming decode, cache keys, records."""
from __future__ import annotations

import json

import numpy as np
import pytest

from wordsight.io.media_options import MediaOptions
from wordsight.io.media_ref import MediaRef
from wordsight.io.sources import open_source

from .conftest import photo, write_video


def _frames(path, **options):
    src = open_source(path, media=MediaOptions(**options))
    assert not src.problems, src.problems
    return [(s.path.frame, s.path.time_s) for s in src.samples]


def test_sampling_rules_give_the_frames_and_times_of_the_clip(clip):
    # 30 frames at 10 frames/s: --fps 2 takes every 5th frame, at 0.5 s steps
    assert _frames(clip, fps=2) == [(i, i / 10) for i in range(0, 30, 5)]
    assert _frames(clip) == [(0, 0.0), (10, 1.0), (20, 2.0)]  # the default: 1 frame a second
    assert _frames(clip, sample="every", every=7) == [(0, 0.0), (7, 0.7), (14, 1.4), (21, 2.1), (28, 2.8)]
    assert _frames(clip, sample="all") == [(i, i / 10) for i in range(30)]
    assert _frames(clip, fps=30) == [(i, i / 10) for i in range(30)]  # above the video's rate: each frame once
    assert _frames(clip, sample="scenes") == [(0, 0.0), (10, 1.0), (20, 2.0)]  # the two cuts


def test_rows_are_unique_paths_carrying_file_frame_and_time(clip):
    s = open_source([clip, clip.parent / "clip.mp4"], media=MediaOptions(fps=1)).samples[:3]
    assert [str(x.path) for x in s] == [f"{clip}#frame={i}" for i in (0, 10, 20)]
    ref = s[1].path
    assert (ref.file, ref.kind, ref.frame, ref.time_s, ref.size) == (str(clip), "video", 10, 1.0, (64, 64))
    assert MediaRef.from_json(ref.to_json()) == ref and MediaRef.from_json(ref.to_json()).time_s == 1.0
    import pickle

    back = pickle.loads(pickle.dumps(ref))
    assert isinstance(back, MediaRef) and back.frame == 10 and back.file == str(clip)


def test_streaming_decode_from_the_middle_equals_a_full_decode(clip):
    import av

    from wordsight.io.video import decode_frames

    with av.open(str(clip)) as c:
        full = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    got = list(decode_frames(clip, [27, 25, 12]))
    assert [i for i, _, _ in got] == [12, 25, 27]
    for i, px, err in got:
        assert err is None and np.array_equal(px, full[i])
    # the frames are the images the clip was made of (H.264 is lossy: a few levels)
    cat, coffee = photo("chelsea").astype(float), photo("coffee").astype(float)
    assert np.abs(full[5] - cat).mean() < 6 and np.abs(full[15] - coffee).mean() < 6
    assert np.abs(full[15] - cat).mean() > 30


def test_a_frame_embeds_as_the_same_pixels_saved_as_png(clip, tmp_path):
    import av
    from PIL import Image

    from wordsight import extract_features

    with av.open(str(clip)) as c:
        frame12 = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)][12]
    Image.fromarray(frame12).save(tmp_path / "f12.png")
    video = extract_features(open_source(clip, media=MediaOptions(sample="every", every=12)), "efficientnet-lite0",
                             cache=False, quiet=True)
    still = extract_features(tmp_path / "f12.png", "efficientnet-lite0", cache=False, quiet=True)
    assert [s.path.frame for s in video.samples] == [0, 12, 24]
    np.testing.assert_allclose(video.embeddings[1], still.embeddings[0], rtol=1e-5, atol=1e-5)
    assert not np.allclose(video.embeddings[0], video.embeddings[1], atol=1e-3)


def test_frames_are_cached_by_content_frame_and_model(clip, tmp_path):
    from wordsight import extract_features
    from wordsight.features.cache import content_hash, feature_key
    from wordsight.features.engines.batch import EmbedBatch

    src = open_source(clip, media=MediaOptions(fps=1))
    first = extract_features(src, "efficientnet-lite0", cache=tmp_path, quiet=True)
    again = extract_features(src, "efficientnet-lite0", cache=tmp_path, quiet=True)
    assert (first.computed, first.cached, again.computed, again.cached) == (3, 0, 0, 3)
    np.testing.assert_array_equal(first.embeddings, again.embeddings)
    # the key: the file's sha256, the model's fingerprint, the frame
    fn = EmbedBatch("efficientnet-lite0", cache=tmp_path)
    digest = content_hash(clip.read_bytes())
    keys = [feature_key(digest, fn.fingerprint, f"|frame={i}") for i in (0, 10, 20)]
    assert set(fn.store.get_many(keys, expect=fn.output_dims())) == set(keys)
    assert not fn.store.get_many([feature_key(digest, fn.fingerprint, "|frame=11")], expect=fn.output_dims())


def test_a_truncated_tail_fails_only_the_frames_it_lost(tmp_path):
    from wordsight.io.video import decode_frames

    noise = np.random.default_rng(0).integers(0, 256, (20, 64, 64, 3), dtype=np.uint8)  # big packets
    path = write_video(tmp_path / "c.mkv", [(f, 1) for f in noise], codec="mpeg4", fmt="matroska")
    data = path.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 2 // 3])
    got = {i: err for i, _, err in decode_frames(cut, [0, 19])}
    assert got[0] is None
    assert got[19] == "the video ends before frame 19 (truncated, or shorter than its header says)"


def test_records_carry_frame_and_time(clip, tmp_path):
    from wordsight.io.records import Prediction, write_records

    refs = open_source(clip, media=MediaOptions(fps=1)).samples
    recs = [Prediction(s.path, None, "cat", [("cat", 0.9)]) for s in refs]
    out = write_records(recs, tmp_path / "r.jsonl")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["path"], r["frame"], r["time_s"]) for r in rows] == [(str(clip), i, i / 10) for i in (0, 10, 20)]
    csv_text = write_records(recs, tmp_path / "r.csv").read_text().splitlines()
    assert csv_text[0].split(",")[-2:] == ["frame", "time_s"] and csv_text[2].endswith(",10,1.000000")
    plain = write_records([Prediction("a.jpg", None, "cat", [("cat", 0.9)])], tmp_path / "p.csv").read_text()
    assert "frame" not in plain and "frame" not in json.dumps(Prediction("a.jpg").to_dict())


@pytest.mark.parametrize("bad", [{"fps": 0}, {"sample": "every", "every": 0}, {"sample": "shots"}])
def test_bad_options_are_refused(bad):
    with pytest.raises(ValueError):
        MediaOptions(**bad)
