"""Second run over the same images vs the first: the feature cache at work.

    python benchmarks/cache_speedup.py --n 10000

Writes N Fashion-MNIST training images as PNGs (seeded, balanced), embeds them twice with a fresh
cache and prints both times and the ratio (goal: >= 20x).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from wordsight.features import FeatureCache, extract_features
from wordsight.io.datasets import write_image_folder


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--profile", action="store_true", help="where the second run's time goes (cProfile, top 12)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_image_folder(Path(tmp) / "data", "train", per_class=args.n // 10)
        cache = FeatureCache(Path(tmp) / "cache")
        t0 = time.perf_counter()
        first = extract_features(folder, args.model, cache=cache)
        t1 = time.perf_counter()
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        second = extract_features(folder, args.model, cache=cache)
        t2 = time.perf_counter()
        if profiler is not None:
            import pstats

            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(12)
    assert second.computed == 0 and len(second.samples) == len(first.samples)
    n = len(first.samples)
    from wordsight.features.engines.batch import used

    print(f"images: {n}  model: {args.model}, features {' '.join(reversed(used(args.model)))}")
    print(f"first run : {t1 - t0:8.1f} s  ({n / (t1 - t0):7.1f} img/s, {first.computed} computed)")
    print(f"second run: {t2 - t1:8.1f} s  ({n / (t2 - t1):7.1f} img/s, {second.cached} from cache)")
    print(f"speed-up  : {(t1 - t0) / (t2 - t1):.1f}x (goal >= 20x)")


if __name__ == "__main__":
    main()
