"""One decode per image for several blocks, and the view choice's reduced decode (issue: decode1).

1. ``extract_blocks`` on a cold cache: the old path (one ``extract_features`` / ``extract_bag`` per
   block, each reading, hashing and decoding every image) against the combined read (each image read
   once, decoded once per distinct JPEG draft scale), in alternating rounds of one process, on JPEGs
   of ``--megapixels`` and on Fashion-MNIST mosaics (small PNGs); the decodes counted, the features
   compared (largest absolute difference).
2. ``choose_view_of_samples`` on the same JPEGs: the old full decode (``decode_image`` without a
   draft, the frame from the whole grey image: the code before, copied below) against the new one
   (drafted to ``VIEW_DECODE_SIZE``, the frame from its strips); the views chosen compared.

3. With ``--cli``: ``wordsight zeroshot`` on the JPEG folder (the view chosen automatically), the
   code before (``--before-src``, e.g. ``git archive main src``) against this one, each on a warm
   feature cache (the same command run once before to fill it): what the view choice still costs.

The files are written here, in a temporary folder: scikit-image photos resized, seeded noise
(benchmarks/multi_view_read.py ``write_photos``), and seeded mosaics.

    OMP_NUM_THREADS=1 PYTHONPATH=src nice python benchmarks/decode_once.py --n 24 --mosaics 48 --rounds 2 \
        [--cli --before-src /tmp/before/src]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from multi_view_read import write_mosaic_files, write_photos  # noqa: E402

ENC = "efficientnet-lite0"
MIXES = {"global + tilebag:2,3": [ENC, f"tilebag:2,3:{ENC}"],
         "global + tiles:2 + tilebag:2,3": [ENC, f"tiles:2:{ENC}", f"tilebag:2,3:{ENC}"]}


class DecodeClock:
    """Counts the real decoder's calls (features.engines.batch.decode_image) and sums their seconds
    (each call's wall time, summed over the pool's threads)."""

    def __init__(self):
        import threading

        from wordsight.features.engines import batch

        self.n, self.seconds, self.lock, real = 0, 0.0, threading.Lock(), batch.decode_image

        def timed(data, **kw):
            t = time.perf_counter()
            try:
                return real(data, **kw)
            finally:
                with self.lock:
                    self.n += 1
                    self.seconds += time.perf_counter() - t

        batch.decode_image = timed


def per_block(paths, encoders, cache):
    """extract_blocks' reads before: one extraction per block."""
    from wordsight.features import extract_features
    from wordsight.features.tilebag import extract_bag, is_bag

    return {e: (extract_bag if is_bag(e) else extract_features)(paths, e, cache=cache, quiet=True).embeddings
            for e in encoders}


def combined(paths, encoders, cache):
    from wordsight.estimator.feature_blocks import extract_blocks

    return extract_blocks(paths, encoders, cache=cache).embeddings


def blocks(label: str, paths, root: Path, rounds: int, counter) -> list[dict]:
    rows = []
    for mix, encoders in MIXES.items():
        out = {}
        for r in range(rounds):
            for mode, run in (("per block", per_block), ("combined", combined)):
                before, spent, t = counter.n, counter.seconds, time.perf_counter()
                out[mode] = run(paths, encoders, root / f"cache-{label}-{mix}-{mode}-{r}")
                rows.append({"files": label, "blocks": mix, "round": r, "mode": mode,
                             "seconds": round(time.perf_counter() - t, 2), "decodes": counter.n - before,
                             "decode_seconds": round(counter.seconds - spent, 2)})
                print(json.dumps(rows[-1]), flush=True)
        diff = max(float(np.abs(out["per block"][e] - out["combined"][e]).max()) for e in encoders)
        ratios = [round(a["seconds"] / b["seconds"], 2) for a, b in zip(rows[-2 * rounds::2], rows[-2 * rounds + 1::2])]
        print(json.dumps({"files": label, "blocks": mix, "ratio_per_round": ratios,
                          "max_abs_embedding_difference": diff}), flush=True)
    return rows


def _old_frame(img, width: int = 2) -> np.ndarray:
    """views._frame before: the whole image converted to grey."""
    g = np.asarray(img.convert("L"), dtype=np.float32)
    w = max(1, min(width, min(g.shape) // 4))
    return np.concatenate([g[:w].ravel(), g[-w:].ravel(), g[:, :w].ravel(), g[:, -w:].ravel()])


def old_choice(samples) -> str:
    """choose_view_of_samples before: each sampled image decoded whole."""
    from wordsight.features.views import DARK_SHARE, NEAR_BLACK, VIEW_SAMPLE
    from wordsight.io.images import DEFAULT_MAX_FILE_BYTES, decode_image
    from wordsight.io.safe_files import read_regular

    dark = []
    for i in np.linspace(0, len(samples) - 1, min(VIEW_SAMPLE, len(samples))).astype(int):
        img = decode_image(read_regular(str(samples[i].path), DEFAULT_MAX_FILE_BYTES))
        dark.append(float(np.mean(_old_frame(img) < NEAR_BLACK)) >= DARK_SHARE)
    return "light-background" if dark and sum(dark) > len(dark) / 2 else "plain"


def view_choice(paths, rounds: int) -> list[dict]:
    from wordsight.features.views import choose_view_of_samples
    from wordsight.io.sources import Sample

    samples = [Sample(p) for p in paths]
    rows = []
    for r in range(rounds):
        for mode, run in (("full decode (before)", old_choice), ("drafted (after)", choose_view_of_samples)):
            t = time.perf_counter()
            view = run(samples)
            rows.append({"view_choice": mode, "round": r, "seconds": round(time.perf_counter() - t, 3),
                         "view": view, "images": len(samples)})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def cli(paths, root: Path, rounds: int, before_src: str) -> list[dict]:
    here = str(Path(__file__).resolve().parents[1] / "src")
    runs = {}
    for name, src in (("before", before_src), ("after", here)):
        cmd = [sys.executable, "-m", "wordsight", "zeroshot", str(Path(paths[0]).parent), "--classes",
               "cat,coffee cup,astronaut,rocket", "--quiet", "--cache-dir", str(root / f"cli-{name}")]
        runs[name] = (cmd, {**os.environ, "PYTHONPATH": src})
        subprocess.run(cmd, env=runs[name][1], capture_output=True, text=True, check=True)  # fills the cache
    rows = []
    for r in range(rounds):  # alternating: the machine's load changes within minutes
        for name, (cmd, env) in runs.items():
            t = time.perf_counter()
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
            rows.append({"cli": f"zeroshot, warm cache, {name}", "round": r, "seconds": round(time.perf_counter() - t, 2),
                         "lines": len(out.splitlines())})
            print(json.dumps(rows[-1]), flush=True)
            rows[-1]["output"] = out
    print(json.dumps({"cli_outputs_identical": len({r["output"] for r in rows}) == 1}), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--megapixels", type=float, default=12.0)
    ap.add_argument("--mosaics", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--cli", action="store_true")
    ap.add_argument("--before-src", default="/work/main/src")
    args = ap.parse_args()
    from wordsight.estimator.feature_blocks import extract_blocks  # noqa: F401 (imported before any timing)
    from wordsight.features import extract_features

    print(json.dumps({"load_average": os.getloadavg(), "cpus": os.cpu_count(),
                      "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}), flush=True)
    counter = DecodeClock()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "photos").mkdir()
        (root / "mosaics").mkdir()
        photos = write_photos(root / "photos", args.n, args.megapixels)
        mosaics = write_mosaic_files(root / "mosaics", args.mosaics) if args.mosaics else []
        extract_features(photos[:1], ENC, cache=False, quiet=True)  # the model loaded before any timing
        extract_features(photos[:1], f"tiles:2:{ENC}", cache=False, quiet=True)
        view_choice(photos, args.rounds)
        if args.cli:
            cli(photos, root, args.rounds, args.before_src)
        blocks(f"{args.n} JPEGs of {args.megapixels:g} MP", photos, root, args.rounds, counter)
        if mosaics:
            blocks(f"{args.mosaics} mosaics", mosaics, root, args.rounds, counter)
    print(json.dumps({"load_average_end": os.getloadavg()}), flush=True)


if __name__ == "__main__":
    main()
