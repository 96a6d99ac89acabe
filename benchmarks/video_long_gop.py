"""Long-GOP video: a file's sampled frames decoded in one forward pass across chunks, against a seek per chunk.

A 720p H.264 clip with a key frame every ``--gop`` frames (x264's default is 250) is made here
(PyAV, moving gradients). Extraction decodes a video a chunk of frames at a time (``--chunk``
frames: two model batches); before issue 25's fix each chunk opened the file and decoded from the
key frame before its first frame, re-decoding up to a GOP per chunk. Measured, in one run, for each
sampling:
  seek per chunk   io.video.decode_frames(stream=False) per chunk (the old way)
  one pass         io.video.decode_frames per chunk, the decoder handed from chunk to chunk
  end to end       extract_features with pixels-32 (a cheap encoder, so the decoder sets the pace),
                   no cache: the streams kept (one pass) and with io.video_streams.STREAMS.max_open = 0
                   (every chunk opens and seeks again)

    OMP_NUM_THREADS=1 nice python benchmarks/video_long_gop.py --seconds 10 --gop 250 --chunk 32
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def make_clip(path: Path, seconds: int, fps: int, gop: int, w: int = 1280, h: int = 720) -> Path:
    import av

    yy, xx = np.mgrid[0:h, 0:w]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "23", "g": str(gop),
                                                       "keyint_min": str(gop), "sc_threshold": "0"})
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(seconds * fps):
            base = ((xx + 5 * i) % 256).astype(np.uint8)
            frame = np.stack([base, ((yy + 3 * i) % 256).astype(np.uint8), 255 - base], axis=2)
            for p in s.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def key_frames(path: Path) -> list[int]:
    import av

    with av.open(str(path)) as c:
        return [i for i, f in enumerate(c.decode(video=0)) if f.key_frame]


def chunked(clip: Path, frames: list[int], chunk: int, stream: bool) -> tuple[int, float]:
    from wordsight.io.video import decode_frames
    from wordsight.io.video_streams import STREAMS

    STREAMS.close_all()
    t = time.perf_counter()
    n = 0
    for i in range(0, len(frames), chunk):
        n += sum(px is not None for _, px, _ in decode_frames(clip, frames[i:i + chunk], stream=stream))
    return n, time.perf_counter() - t


def end_to_end(clip: Path, options, keep_streams: bool) -> tuple[int, float]:
    from wordsight import extract_features
    from wordsight.io.sources import open_source
    from wordsight.io.video_streams import MAX_OPEN, STREAMS

    STREAMS.close_all()
    STREAMS.max_open = MAX_OPEN if keep_streams else 0
    try:
        src = open_source(clip, media=options)
        t = time.perf_counter()
        fs = extract_features(src, "pixels-32", cache=False, quiet=True)
        return len(fs.samples), time.perf_counter() - t
    finally:
        STREAMS.max_open = MAX_OPEN


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--gop", type=int, default=250)
    ap.add_argument("--chunk", type=int, default=32)
    args = ap.parse_args()

    from wordsight.io.media_options import MediaOptions
    from wordsight.io.video import planned_frames, probe

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        clip = make_clip(Path(tmp) / "long_gop.mp4", args.seconds, args.fps, args.gop)
        info = probe(clip)
        keys = key_frames(clip)
        print(f"clip: {info.width}x{info.height}, {info.frames} frames at {info.fps:g} frames/s, key frames at "
              f"{keys}, {clip.stat().st_size / 1e6:.1f} MB, made in {time.perf_counter() - t:.1f} s")
        print("sampling      | seek per chunk      | one pass            | speed-up")
        for label, opts in (("--every 1", MediaOptions(sample="every", every=1)),
                            ("--every 3", MediaOptions(sample="every", every=3)),
                            ("--fps 5", MediaOptions(fps=5))):
            frames = planned_frames(info, opts)
            n0, s0 = chunked(clip, frames, args.chunk, stream=False)
            n1, s1 = chunked(clip, frames, args.chunk, stream=True)
            assert n0 == n1 == len(frames)
            print(f"{label:13s} | {n0} in {s0:5.2f} s = {n0 / s0:6.1f}/s | {n1} in {s1:5.2f} s = {n1 / s1:6.1f}/s | "
                  f"{s0 / s1:.2f}x")
        for label, opts in (("--every 1", MediaOptions(sample="every", every=1)),):
            n0, s0 = end_to_end(clip, opts, keep_streams=False)
            n1, s1 = end_to_end(clip, opts, keep_streams=True)
            print(f"end to end {label} (pixels-32): seek per chunk {n0 / s0:.1f} frames/s, one pass "
                  f"{n1 / s1:.1f} frames/s ({s0 / s1:.2f}x)")


if __name__ == "__main__":
    main()
