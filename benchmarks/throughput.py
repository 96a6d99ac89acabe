"""Images/s of a naive tutorial loop vs the wordsight local engine vs the Ray engine, side by side.

    python benchmarks/throughput.py --n-images 1000 --n-fashion 70000 --naive-n 100

Photo-sized JPEGs (1024x768, generated from scikit-image's photos with random crops, flips,
exposure and JPEG quality) and 28-px Fashion-MNIST images (PNG bytes in memory). Prints images/s,
ratios, peak RSS (the process tree: with Ray, the raylet and the actors too) and the share of the
fp32 FLOP limit: model GFLOP per image x images/s / peak GFLOP/s of a large matmul measured in
this run. The naive loop: PIL open + full decode + resize + crop, one image at a time through the
PyTorch model without inference mode (timed on ``--naive-n`` images).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


class PeakRSS:
    """Peak resident memory of this process and its descendants, sampled every 50 ms."""

    def __init__(self, tree: bool = False):
        import psutil

        self.proc, self.peak, self._stop, self.tree = psutil.Process(), 0, threading.Event(), tree

    def _total(self) -> int:
        total = self.proc.memory_info().rss
        for c in self.proc.children(recursive=True) if self.tree else ():
            try:
                total += c.memory_info().rss
            except Exception:
                pass
        return total

    def __enter__(self):
        self.peak = self._total()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._total())

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._total())


def make_jpegs(folder: Path, n: int, seed: int = 0) -> list[str]:
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    names = ["astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
             "colorwheel", "camera", "moon"]
    bases = [Image.fromarray(np.asarray(getattr(data, k)())).convert("RGB") for k in names]
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        p = folder / f"{i:05d}.jpg"
        paths.append(str(p))
        if p.exists():
            continue
        img = bases[i % len(bases)]
        w, h = img.size
        cw = int(w * rng.uniform(0.6, 1.0))
        ch = min(h, int(cw * 0.75))
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        im = img.crop((x0, y0, x0 + cw, y0 + ch)).resize((1024, 768), Image.Resampling.BILINEAR)
        if rng.random() < 0.5:
            im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        arr = np.asarray(im, np.float32) * rng.uniform(0.8, 1.2) + rng.normal(0, 4, (768, 1024, 1))
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(p, quality=int(rng.integers(80, 96)))
    return paths


def fashion_samples(n: int):
    from PIL import Image

    from wordsight.io.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist
    from wordsight.io.sources import Sample

    xs, ys = zip(*(load_fashion_mnist(s) for s in ("train", "test")))
    x, y = np.concatenate(xs)[:n], np.concatenate(ys)[:n]
    out = []
    for i in range(len(x)):
        buf = io.BytesIO()
        Image.fromarray(x[i], "L").save(buf, format="PNG", compress_level=1)
        out.append(Sample(f"fashion-mnist/{i:05d}.png", FASHION_MNIST_CLASSES[y[i]], None, buf.getvalue()))
    return out


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


def model_gflops(encoder, size: int) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc, torch.inference_mode():
        encoder(torch.zeros(1, 3, size, size))
    return fc.get_total_flops() / 1e9


def naive_loop(samples, model: str) -> float:
    """The tutorial way: one image at a time, full decode, autograd on."""
    import torch
    from PIL import Image

    from wordsight.encoders import load_model

    enc = load_model(model)
    cfg = enc.config
    mean, std = np.asarray(cfg.mean, np.float32), np.asarray(cfg.std, np.float32)
    t = time.perf_counter()
    for i, s in enumerate(samples):
        if i == 1:  # the first image warms up; it is not timed
            t = time.perf_counter()
        img = Image.open(s.path if s.data is None else io.BytesIO(s.data)).convert("RGB")  # full decode
        w, h = img.size
        sc = cfg.resize_size / min(w, h)
        img = img.resize((max(cfg.input_size, round(w * sc)), max(cfg.input_size, round(h * sc))), Image.BICUBIC)
        left, tp = (img.size[0] - cfg.input_size) // 2, (img.size[1] - cfg.input_size) // 2
        img = img.crop((left, tp, left + cfg.input_size, tp + cfg.input_size))
        x = torch.from_numpy(((np.asarray(img, np.float32) / 255 - mean) / std).transpose(2, 0, 1).copy())
        enc(x.unsqueeze(0))["embedding"].detach().numpy()
    return (len(samples) - 1) / (time.perf_counter() - t)


def local_engine(samples, model: str, out: Path | None = None, **kw) -> tuple[float, int]:
    from wordsight.features.parquet import write_embeddings

    t = time.perf_counter()
    stats = write_embeddings(samples, out, model, cache=False, quiet=True, **kw)
    return stats.ok / (time.perf_counter() - t), stats.ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-images", type=int, default=1000, help="photo-sized JPEGs")
    ap.add_argument("--naive-n", type=int, default=100, help="images the (slow) naive loop is timed on")
    ap.add_argument("--n-fashion", type=int, default=70000, help="Fashion-MNIST images for the local engine")
    ap.add_argument(
        "--n-fashion-ray", type=int, default=None, help="Fashion-MNIST images for Ray (default: --n-fashion)"
    )
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--model-only", action="store_true", help="only the FLOP-limit figures (no images)")
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "wordsight-bench"))
    args = ap.parse_args()

    import torch

    from wordsight.encoders import load_model
    from wordsight.features.engines import batch as batch_mod
    from wordsight.features.engines import make_runner
    from wordsight.features.engines.tuning import tuned_batch_size, tuning_entry
    from wordsight.io.sources import Sample

    work = Path(args.workdir)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start, torch threads "
          f"{torch.get_num_threads()}")
    peak = matmul_peak_gflops()
    enc = load_model(args.model)
    g224 = model_gflops(enc, enc.config.input_size)
    small = batch_mod.SMALL_INPUT
    g_small = model_gflops(enc, small) if small else g224
    runner = make_runner(args.model)  # exports once (cached), outside the timings
    size = enc.config.input_size
    batch = tuned_batch_size(runner, size)  # measured once per machine (cached), outside the timings
    print("batch sizes measured for the engine (img/s): " + json.dumps(tuning_entry(runner, size)["images_per_second"]))
    x = np.random.default_rng(0).normal(size=(batch, 3, size, size)).astype(np.float32)
    runner(x)
    t = time.perf_counter()
    for _ in range(5):
        runner(x)
    model_only = 5 * len(x) / (time.perf_counter() - t)
    print(f"peak fp32 matmul {peak:.0f} GFLOP/s; {args.model} {g224:.2f} GFLOP/image at {enc.config.input_size} px"
          f" -> FLOP limit {peak / g224:.0f} img/s; tiny images run at "
          f"{small or enc.config.input_size} px ({g_small:.3f} GFLOP)")
    print(f"model alone ({runner.engine} {runner.precision}, batch {batch}, no decoding): "
          f"{model_only:.1f} img/s = {model_only * g224 / peak:.0%} of the FLOP limit\n")

    if args.model_only:
        return
    jpegs = [Sample(p) for p in make_jpegs(work / "jpegs", args.n_images)]
    fashion = fashion_samples(args.n_fashion)
    rows = []

    def row(name, data, rate, rss, gflop):
        rows.append((name, data, rate, rss, rate * gflop / peak))
        print(f"  {name:<28} {data:<22} {rate:8.1f} img/s  peak RSS {rss / 2**30:5.2f} GiB  "
              f"{rate * gflop / peak:5.0%} of FLOP limit", flush=True)

    sets = [("JPEG 1024x768", jpegs, g224), ("Fashion-MNIST 28 px", fashion, g_small)]
    naive = {}
    for label, samples, gflop in sets:
        print(f"{label}, {len(samples)} images")
        with PeakRSS() as m:
            rate = naive_loop(samples[: args.naive_n + 1], args.model)
        row("naive loop", f"(timed on {args.naive_n})", rate, m.peak, g224)
        naive[label] = rate
        with PeakRSS() as m:
            rate, n = local_engine(samples, args.model, work / "local.parquet")
        row("wordsight local (auto)", f"({n})", rate, m.peak, gflop)
        print(f"  -> local / naive = {rate / naive[label]:.1f}x\n", flush=True)
    if args.no_ray:
        return
    import shutil

    from wordsight.features.engines.ray_engine import init_ray

    t = time.perf_counter()
    init_ray()
    print(f"Ray: local cluster started in {time.perf_counter() - t:.1f} s (not counted below); peak RSS "
          "is the whole process tree (driver, raylet, GCS, actors)")
    for label, samples, gflop in sets:
        ray_samples = samples if samples is jpegs else samples[: args.n_fashion_ray or len(samples)]
        shutil.rmtree(work / "ray-shards", ignore_errors=True)
        with PeakRSS(tree=True) as m:
            rate, n = local_engine(ray_samples, args.model, work / "ray-shards", engine="ray", num_cpus=1,
                                   shard_size=1000)
        row("wordsight ray (2 actors)", f"({n}, actor start incl.)", rate, m.peak, gflop)
        print(f"  -> ray / naive = {rate / naive[label]:.1f}x", flush=True)


if __name__ == "__main__":
    main()
