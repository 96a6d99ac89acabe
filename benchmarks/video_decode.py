"""Does decoding a video stay ahead of the encoder? Frames/s decoded against frames/s embedded.

A 1080p H.264 clip is made here (PyAV, moving gradients and a scene cut every second so that the
encoder cannot cheat), then:
  decode all     io.video.decode_frames over every frame (streaming, one pass)
  decode --fps 1 the frames the default sampling takes (one a second: the decoder still decodes
                 every frame of each GOP up to the one wanted)
  embed          EmbedBatch's pipeline on those decoded frames: resize + normalise + the model
                 (efficientnet-lite0, ONNX Runtime, fp32), no cache
  end to end     extract_features on the video at --fps 1 and at --every 1 (no cache)

    OMP_NUM_THREADS=1 nice python benchmarks/video_decode.py --seconds 6 --fps 30
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def make_clip(path: Path, seconds: int, fps: int, w: int = 1920, h: int = 1080) -> Path:
    import av

    yy, xx = np.mgrid[0:h, 0:w]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "23"})
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(seconds * fps):
            scene = i // fps
            base = ((xx + 13 * i) % 256 if scene % 2 else (yy + 7 * i) % 256).astype(np.uint8)
            frame = np.stack([base, np.roll(base, 40 * scene, axis=1), 255 - base], axis=2)
            for p in s.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def rate(n: int, seconds: float) -> str:
    return f"{n} frames in {seconds:.2f} s = {n / seconds:.1f} frames/s"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=6)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--model", default="efficientnet-lite0")
    args = ap.parse_args()

    from wordsight import extract_features
    from wordsight.features.engines.batch import EmbedBatch
    from wordsight.io.media_options import MediaOptions
    from wordsight.io.sources import open_source
    from wordsight.io.video import decode_frames, planned_frames, probe

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        clip = make_clip(Path(tmp) / "clip.mp4", args.seconds, args.fps)
        info = probe(clip)
        print(f"clip: {info.width}x{info.height}, {info.frames} frames at {info.fps:g} frames/s, "
              f"{clip.stat().st_size / 1e6:.1f} MB, made in {time.perf_counter() - t:.1f} s")

        t = time.perf_counter()
        n = sum(1 for _, px, _ in decode_frames(clip, range(info.frames)) if px is not None)
        print("decode all:     " + rate(n, time.perf_counter() - t))

        wanted = planned_frames(info, MediaOptions(fps=1))
        t = time.perf_counter()
        frames = [px for _, px, _ in decode_frames(clip, wanted)]
        print(f"decode --fps 1: {rate(len(frames), time.perf_counter() - t)} (sampled)")

        fn = EmbedBatch(args.model, cache=False)
        fn.runner  # load the model outside the timing
        sample = open_source(clip, media=MediaOptions(fps=1)).samples[0]
        stack = np.stack([fn.frame_input(sample, px)[0] for px in frames])
        fn.runner(stack[:2])  # warm up
        reps = max(1, 32 // len(frames))
        t = time.perf_counter()
        for _ in range(reps):
            batch = np.stack([fn.frame_input(sample, px)[0] for px in frames])
            fn.runner(batch)
        print("embed (preprocess + model): " + rate(reps * len(frames), time.perf_counter() - t))

        for label, opts in (("--fps 1", MediaOptions(fps=1)), ("--every 1", MediaOptions(sample="every", every=1))):
            src = open_source(clip, media=opts)
            t = time.perf_counter()
            fs = extract_features(src, args.model, cache=False, quiet=True)
            print(f"end to end {label}: " + rate(len(fs.samples), time.perf_counter() - t))


if __name__ == "__main__":
    main()
