"""Load test of `wordsight serve`: micro-batched vs one image per model call, side by side.

    nice -n 10 python benchmarks/load_server.py --clients 32 --seconds 30

For each mode it starts `wordsight serve` as its own process on a free loopback port (the same
model folder, the same limits), lets N concurrent clients POST one photo each to /v1/predict, as
fast as answers come back, for a fixed time, and prints throughput, p50/p95/p99 latency, the
error count and the mean images per model call (from /metrics). The last line is the ratio of
the two throughputs (goal: >= 2x, with 0 errors at 32 clients).

The local engine's end-to-end rate on the same JPEG bytes (decode + model, no cache) and its
single-image latency are measured in this process before, between and after the server runs
(medians), for the goals: server img/s >= 70% of the engine's, one-client p50 <= 2 x the
engine's single-image latency + 10 ms.

Without --model it fits a small Classifier on four scikit-image photos first (about 20 s).
Clients and server share this machine's cores: the figures are for the whole loop on one box.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from wordsight.estimator.heads import LogisticHead
from wordsight.serve.process import ServeProcess

MODES = {"micro-batched": ["--max-batch", "16", "--max-wait-ms", "10"],
         "one-per-call": ["--max-batch", "1", "--max-wait-ms", "0"]}


def photos(size=(640, 480)) -> list[tuple[str, bytes]]:
    from PIL import Image
    from skimage import data

    out = []
    for name in ("chelsea", "coffee", "rocket", "astronaut"):
        buf = io.BytesIO()
        img = Image.fromarray(getattr(data, name)()).convert("RGB")
        img = img.resize(size, Image.Resampling.BILINEAR) if size else img
        img.save(buf, "JPEG", quality=90)
        out.append((f"{name}.jpg", buf.getvalue()))
    return out


def engine_rates(model: str, images, n: int = 96) -> tuple[float, float]:
    """The local engine on the same JPEG bytes, in this process: end-to-end img/s over ``n`` images
    (decode + preprocess + model, no cache) and the median latency of one image, in ms."""
    from wordsight.estimator import Classifier
    from wordsight.features import extract_features
    from wordsight.features.engines.batch import EmbedBatch
    from wordsight.io.sources import Sample

    clf = Classifier.load(model)
    encoder = clf.encoder_names[0]
    precision = clf.state_.precisions.get(encoder, "auto")  # what the server computes for this model
    samples = [Sample(f"{i}-{images[i % len(images)][0]}", data=images[i % len(images)][1]) for i in range(n)]
    extract_features(samples[:16], encoder, cache=False, quiet=True, precision=precision)  # warm: runner, batch size
    t = time.perf_counter()
    extract_features(samples, encoder, cache=False, quiet=True, precision=precision)
    rate = n / (time.perf_counter() - t)
    fn = EmbedBatch(encoder, cache=False, precision=precision)
    print(f"engine: {encoder} {fn.runner.precision} ({fn.runner.engine})")
    times = []
    for i in range(16):  # decode + preprocess + model on one image (the first call warms batch-1 shapes)
        t = time.perf_counter()
        x, _ = fn.decode(images[i % len(images)][1])
        fn.runner(x[None])
        times.append(time.perf_counter() - t)
    times = times[1:]
    return rate, float(np.median(times)) * 1000


def fit_small_model(folder: Path) -> str:
    from PIL import Image

    from wordsight.estimator import Classifier
    from wordsight.io.sources import Sample

    samples = []
    for name, data in photos():
        img = Image.open(io.BytesIO(data))
        flipped = io.BytesIO()
        img.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(flipped, "JPEG", quality=90)
        label = name.split(".")[0]
        samples += [Sample(f"{label}/0.jpg", label, data=data),
                    Sample(f"{label}/1.jpg", label, data=flipped.getvalue())]
    Classifier(head=LogisticHead(C=1.0), cache=False).fit(samples).save(folder)
    return str(folder)


def batch_stats(url: str) -> tuple[float, float]:
    text = httpx.get(url + "/metrics", timeout=30).text
    s = re.search(r'^wordsight_batch_size_sum\{model="classifier"\} (\S+)$', text, re.M)
    c = re.search(r'^wordsight_batch_size_count\{model="classifier"\} (\S+)$', text, re.M)
    return (float(s.group(1)) if s else 0.0), (float(c.group(1)) if c else 0.0)


async def load(url: str, images, clients: int, seconds: float) -> dict:
    latencies, errors, kinds = [], 0, {}
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def one_client(i: int):
            nonlocal errors
            k = i
            while time.monotonic() < stop:
                name, data = images[k % len(images)]
                k += 1
                t = time.perf_counter()
                try:
                    r = await client.post("/v1/predict", files=[("files", (name, data, "image/jpeg"))])
                    ok = r.status_code == 200
                    kind = str(r.status_code)
                except httpx.HTTPError as e:
                    ok, kind = False, type(e).__name__
                if ok:
                    latencies.append(time.perf_counter() - t)
                else:
                    errors += 1
                    kinds[kind] = kinds.get(kind, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(one_client(i) for i in range(clients)))
        wall = time.perf_counter() - t0
    lat = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    return {"ok": len(latencies), "errors": errors, "kinds": kinds, "wall": wall,
            "throughput": len(latencies) / wall, "p50": np.percentile(lat, 50), "p95": np.percentile(lat, 95),
            "p99": np.percentile(lat, 99)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="a saved Classifier folder (default: fit a small one on 4 photos)")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=30.0, help="load time per mode")
    ap.add_argument("--timeout", type=float, default=30.0, help="server request timeout (the default limit)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or fit_small_model(Path(tmp) / "model")
        images = photos()
        print(f"model: {Path(model).name}  clients: {args.clients}  seconds per mode: {args.seconds:g}  "
              f"cpus: {os.cpu_count()}  load average at start: {os.getloadavg()[0]:.1f}")
        results, engine = {}, []
        for mode, extra in MODES.items():
            engine.append(engine_rates(model, images))  # interleaved with the server runs
            with ServeProcess([model, "--log-level", "warning", "--timeout", str(args.timeout), *extra]) as server:
                url = server.url
                asyncio.run(load(url, images, 4, 3))  # warm the connections and the process
                s0, c0 = batch_stats(url)
                results[mode] = r = asyncio.run(load(url, images, args.clients, args.seconds))
                s1, c1 = batch_stats(url)
                r["mean_batch"] = (s1 - s0) / max(c1 - c0, 1)
                if mode == "micro-batched":
                    results["one client"] = r1 = asyncio.run(load(url, images, 1, min(args.seconds, 10)))
                    r1["mean_batch"] = 1.0
        engine.append(engine_rates(model, images))
        print(f"{'mode':<14} {'requests':>8} {'errors':>6} {'img/s':>7} {'p50 ms':>8} {'p95 ms':>8} "
              f"{'p99 ms':>8} {'img/call':>8}")
        for mode, r in results.items():
            print(f"{mode:<14} {r['ok']:>8} {r['errors']:>6} {r['throughput']:>7.2f} {r['p50']:>8.0f} "
                  f"{r['p95']:>8.0f} {r['p99']:>8.0f} {r['mean_batch']:>8.1f}"
                  + (f"  errors: {r['kinds']}" if r["kinds"] else ""))
        rate = float(np.median([e[0] for e in engine]))
        single = float(np.median([e[1] for e in engine]))
        a, one = results["micro-batched"], results["one client"]
        print(f"local engine, same files, this process: {rate:.2f} img/s end to end (runs: "
              f"{', '.join(f'{e[0]:.1f}' for e in engine)}), one image {single:.0f} ms")
        print(f"server / engine throughput: {a['throughput'] / rate:.2f} (goal >= 0.70); one-client p50 "
              f"{one['p50']:.0f} ms vs 2 x engine single-image + 10 ms = {2 * single + 10:.0f} ms "
              f"({'met' if one['p50'] <= 2 * single + 10 else 'not met'})")
        b = results["one-per-call"]
        print(f"micro-batching throughput ratio: {a['throughput'] / b['throughput']:.2f}x (goal >= 2x); "
              f"errors with {args.clients} clients: {a['errors']} micro-batched, {b['errors']} one-per-call")
        print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
