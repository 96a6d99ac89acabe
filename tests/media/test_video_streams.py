"""A video's sampled frames are decoded in one forward pass across chunks (long GOPs): the decoder of
one chunk goes on for the next, a chunk behind it or a changed file seeks afresh, at most two files
stay open, and the pixels equal a decode that seeks per chunk."""
from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from wordsight.io.video import decode_frames
from wordsight.io.video_streams import STREAMS, Streams

from .conftest import photo, write_video


@pytest.fixture(autouse=True)
def _no_open_streams():
    STREAMS.close_all()
    yield
    STREAMS.close_all()


def _open_cursor():
    assert len(STREAMS) == 1
    return next(iter(STREAMS._idle.values()))[1]


def _pixels(path, frames, stream=True):
    out = list(decode_frames(path, frames, stream=stream))
    assert all(err is None for _, _, err in out), out
    return [px for _, px, _ in out]


def test_chunks_decode_in_one_forward_pass_and_equal_a_seek_per_chunk(clip):
    chunks = [list(range(0, 10)), list(range(10, 20)), list(range(20, 30))]
    got = [_pixels(clip, c) for c in chunks[:1]]
    cursor = _open_cursor()
    assert (cursor.last, cursor.decoded) == (9, 10)
    got += [_pixels(clip, c) for c in chunks[1:]]
    assert _open_cursor() is cursor and (cursor.last, cursor.decoded) == (29, 30)  # each frame decoded once
    for c, px in zip(chunks, got):
        for a, b in zip(px, _pixels(clip, c, stream=False)):
            assert np.array_equal(a, b)


def test_a_chunk_behind_the_decoder_or_too_far_ahead_seeks(clip):
    _pixels(clip, [5, 6])
    cursor = _open_cursor()
    assert cursor.reaches(7) and cursor.reaches(8) and not cursor.reaches(6) and not cursor.reaches(5)
    assert cursor.reaches(6 + 7) and not cursor.reaches(6 + 8)  # 7 frames since the key frame at 0: as far
    [a] = _pixels(clip, [3])  # behind: seeks back
    assert _open_cursor() is cursor and cursor.last == 3 and cursor.decoded == 7 + 4
    [b] = _pixels(clip, [3], stream=False)
    assert np.array_equal(a, b)


def test_a_changed_file_is_opened_afresh_and_two_files_stay_open(tmp_path):
    cat = photo("chelsea")
    paths = [write_video(tmp_path / f"{i}.mp4", [(np.roll(cat, i, axis=1), 6)]) for i in range(3)]
    _pixels(paths[0], [0, 1])
    first = _open_cursor()
    os.utime(paths[0], ns=(1, 1))  # the file changed on disk (its mtime): not the same video
    _pixels(paths[0], [2])
    assert len(STREAMS) == 1 and _open_cursor() is not first and first._ctx is None  # the old one closed
    for p in paths[1:]:
        _pixels(p, [0])
    assert len(STREAMS) == 2 and str(paths[0]) not in STREAMS._idle  # the least recently used closed


def test_decoding_to_the_end_or_a_truncated_file_keeps_nothing_open(clip, tmp_path):
    out = list(decode_frames(clip, [29, 30]))
    assert out[1][1] is None and "ends before frame 30" in out[1][2]
    assert len(STREAMS) == 0
    data = clip.read_bytes()
    (tmp_path / "in-memory.mp4").write_bytes(data)
    assert [i for i, px, _ in decode_frames(data, [1, 2]) if px is not None] == [1, 2]  # bytes: no stream kept
    assert len(STREAMS) == 0


def test_a_chunk_waits_for_the_chunk_before_it_on_the_same_file():
    streams = Streams()

    class Fake:
        reusable = True

        def close(self):
            self.reusable = False

    key = ("clip.mp4", 1, 2, 3, 4)
    assert streams.take(key, 0, 9) is None
    got = []
    later = threading.Thread(target=lambda: got.append(streams.take(key, 10, 19)))
    later.start()
    later.join(0.3)
    assert later.is_alive() and not got  # frames 10-19 wait for the chunk of frames 0-9
    cursor = Fake()
    streams.give_back(key, cursor, 9)
    later.join(5)
    assert got == [cursor]
    assert streams.take(key, 5, 8) is None  # a chunk behind the busy one does not wait: it opens its own


def test_an_extraction_leaves_no_video_open(clip):
    from wordsight import extract_features

    fs = extract_features(clip, "pixels-32", cache=False, quiet=True)
    assert len(fs.samples) == 3 and len(STREAMS) == 0
