"""Peak memory of `wordsight predict --out x.jsonl` over a long manifest: in chunks (the CLI's
default) against the whole list at once (the chunk made larger than the list, as predict was).

A model is fitted on a few scikit-image photos; the manifest lists those photos again and again
(the features come from the cache after the first pass, so the run measures what predict holds,
not the encoder). Each run is a fresh process; its peak resident memory (ru_maxrss) is printed.

    nice python benchmarks/predict_memory.py --rows 2000 20000
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import resource, sys
import wordsight.cli.predict as predict
from wordsight.cli import main
predict.CHUNK = int(sys.argv[1])
code = main(sys.argv[2:])
print(code, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, file=sys.stderr)
"""


def photos(folder: Path) -> list[str]:
    from PIL import Image
    from skimage import data

    paths = []
    for name in ("chelsea", "coffee", "rocket", "astronaut"):
        (folder / name).mkdir(parents=True, exist_ok=True)
        path = folder / name / "0.jpg"
        Image.fromarray(getattr(data, name)()).save(path, quality=90)
        paths.append(str(path))
    return paths


def run(chunk: int, model: Path, manifest: Path, out: Path, cache: Path) -> tuple[int, float]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, str(chunk), "predict", str(model), str(manifest), "--out",
                           str(out), "--quiet", "--cache-dir", str(cache)], capture_output=True, text=True)
    code, peak_mb = done.stderr.strip().splitlines()[-1].split()
    assert code == "0", done.stderr
    return int(peak_mb), time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[2000, 20000])
    args = ap.parse_args()
    from wordsight.cli import main as cli
    from wordsight.cli.predict import CHUNK

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = photos(tmp / "photos")
        cache = tmp / "cache"
        assert cli(["fit", str(tmp / "photos"), "--out", str(tmp / "model"), "--fusion", "image", "--C", "1",
                    "--quiet", "--cache-dir", str(cache)]) == 0
        print(f"{'rows':>8} {'chunk':>8} {'peak MB':>8} {'seconds':>8}")
        for n in args.rows:
            manifest = tmp / f"list{n}.csv"
            with open(manifest, "w", newline="") as f:
                csv.writer(f).writerows([["path"], *[[paths[i % len(paths)]] for i in range(n)]])
            for chunk in (CHUNK, n + 1):
                peak, seconds = run(chunk, tmp / "model", manifest, tmp / "out.jsonl", cache)
                print(f"{n:>8} {chunk:>8} {peak:>8} {seconds:>8.1f}", flush=True)
                os.remove(tmp / "out.jsonl")


if __name__ == "__main__":
    main()
