"""The README's video timeline picture: a classifier fitted on scikit-image photos (cat, coffee,
rocket, astronaut), a clip made of them (cat 0-2 s, coffee 2-4 s, rocket 4-5 s, cat 5-6 s), the
report's timeline of that clip.

    python scripts/timeline_picture.py docs/images/video_timeline.png
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


def main(out: str) -> None:
    import av
    from skimage import data

    from wordsight import Classifier
    from wordsight.evaluate.report import evaluate
    from wordsight.evaluate.timeline_report import plot_timeline

    photos = {"cat": data.chelsea(), "coffee": data.coffee(), "rocket": data.rocket(), "astronaut": data.astronaut()}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for label, arr in photos.items():
            (root / "train" / label).mkdir(parents=True)
            img = Image.fromarray(arr).convert("RGB")
            img.save(root / "train" / label / "a.jpg")
            img.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(root / "train" / label / "b.jpg")
        (root / "test" / "cat").mkdir(parents=True)
        clip = root / "test" / "cat" / "street.mp4"
        with av.open(str(clip), "w") as c:
            s = c.add_stream("libx264", rate=10)
            s.width, s.height, s.pix_fmt = 160, 128, "yuv420p"
            for label, n in (("cat", 20), ("coffee", 20), ("rocket", 10), ("cat", 10)):
                frame = np.asarray(Image.fromarray(photos[label]).convert("RGB").resize((160, 128)))
                for _ in range(n):
                    for p in s.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                        c.mux(p)
            for p in s.encode():
                c.mux(p)
        clf = Classifier(fusion="image").fit(root / "train")
        from wordsight.io.media_options import MediaOptions, use_media_options

        with use_media_options(MediaOptions(fps=2)):
            results = evaluate(clf, root / "test", ablation=False, zero_shot=False)
        timeline = results["timelines"][0]
        timeline["true"] = None  # the clip's folder names one class; the picture shows what was predicted
        plot_timeline(timeline, Path(out))
    print(f"-> {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "video_timeline.png")
