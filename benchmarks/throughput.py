"""Images/s of a naive loop, a competent PyTorch baseline, ONNX Runtime, OpenVINO (fp32, bf16,
int8) and wordsight's default engine, model alone and end to end, in interleaved rounds.

    nice python benchmarks/throughput.py --n-images 1000 --rounds 3 [--int8] [--ray]

Photo-sized JPEGs (1024x768, generated from scikit-image's photos with random crops, flips,
exposure and JPEG quality). Prints images/s (medians of the rounds, every round listed), ratios,
peak RSS and the share of the fp32 FLOP limit: model GFLOP per image x images/s / the fastest fp32
GEMM measured in this run (torch, ONNX Runtime or OpenVINO). The naive loop: PIL open + full
decode + resize + crop, one image at a time through the PyTorch model without inference mode
(timed on ``--naive-n`` images). The competent baseline: a 2-worker DataLoader, batches of 32,
inference mode, channels-last. Decode-only rates (Pillow's draft vs simplejpeg's DCT scaling, the
engine's 4 threads) bound the end-to-end rate from the other side.
"""
from __future__ import annotations

import argparse
import io
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


def gemm_peaks(n: int = 1536, repeats: int = 5) -> dict[str, float]:
    """Best fp32 GFLOP/s of an n x n matmul in each library: torch, ONNX Runtime, OpenVINO (the
    fastest is the FLOP limit the shares below are taken against)."""
    import torch

    a = np.random.default_rng(0).normal(size=(n, n)).astype(np.float32)
    calls = {"torch": (lambda t=torch.from_numpy(a): torch.mm(t, t))}
    try:
        import onnx
        from onnx import TensorProto, helper

        from wordsight.encoders.onnx import session

        g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "mm",
                              [helper.make_tensor_value_info(k, TensorProto.FLOAT, [n, n]) for k in "ab"],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])])
        path = Path(tempfile.mkdtemp()) / "mm.onnx"
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
        sess = session(path)
        calls["onnxruntime"] = lambda: sess.run(None, {"a": a, "b": a})
        from wordsight.features.engines.openvino_runner import compile_model

        ov_mm = compile_model(path, "fp32")
        req = ov_mm.create_infer_request()
        calls["openvino"] = lambda: req.infer({0: a, 1: a})
    except ImportError:
        pass
    out = {}
    for name, f in calls.items():
        f()
        best = 0.0
        for _ in range(repeats):
            t = time.perf_counter()
            f()
            best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
        out[name] = best
    return out


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


def local_engine(samples, model: str, **kw) -> float:
    """wordsight's local engine end to end (read, decode, preprocess, model), no cache."""
    from wordsight.features import iter_features

    t = time.perf_counter()
    n = sum(len(b.samples) for b in iter_features(samples, model, cache=False, quiet=True, **kw))
    return n / (time.perf_counter() - t)


def ray_engine(samples, model: str, work: Path) -> float:
    import shutil

    from wordsight.features.parquet import write_embeddings

    shutil.rmtree(work / "ray-shards", ignore_errors=True)
    t = time.perf_counter()
    stats = write_embeddings(samples, work / "ray-shards", model, cache=False, quiet=True, engine="ray", num_cpus=1,
                             shard_size=1000)
    return stats.ok / (time.perf_counter() - t)


def competent_torch(paths: list[str], model: str, batch: int = 32, workers: int = 2) -> float:
    """What a competent PyTorch user writes: a Dataset doing the torchvision-style preprocessing
    (full decode, resize, centre crop, normalise), a 2-worker DataLoader, batches of 32, inference
    mode, channels-last."""
    import torch
    from PIL import Image

    from wordsight.encoders import load_model

    enc = load_model(model).eval()
    cfg = enc.config
    mean, std = np.asarray(cfg.mean, np.float32), np.asarray(cfg.std, np.float32)

    class Files(torch.utils.data.Dataset):
        def __len__(self):
            return len(paths)

        def __getitem__(self, i):
            img = Image.open(paths[i]).convert("RGB")
            w, h = img.size
            sc = cfg.resize_size / min(w, h)
            img = img.resize((round(w * sc), round(h * sc)), Image.BICUBIC)
            left, top = (img.size[0] - cfg.input_size) // 2, (img.size[1] - cfg.input_size) // 2
            img = img.crop((left, top, left + cfg.input_size, top + cfg.input_size))
            return torch.from_numpy(((np.asarray(img, np.float32) / 255 - mean) / std).transpose(2, 0, 1).copy())

    enc.to(memory_format=torch.channels_last)
    loader = torch.utils.data.DataLoader(Files(), batch_size=batch, num_workers=workers)
    t = time.perf_counter()
    with torch.inference_mode():
        for x in loader:
            enc(x.contiguous(memory_format=torch.channels_last))["embedding"].numpy()
    return len(paths) / (time.perf_counter() - t)


def decode_only(samples, model: str, how: str = "pillow-draft", workers: int = 4) -> float:
    """Read + decode + preprocess only, in the engine's thread pool: the decoding side's limit."""
    from concurrent.futures import ThreadPoolExecutor

    from wordsight.features.engines.batch import EmbedBatch, read_bytes

    fn = EmbedBatch(model, cache=False)
    cfg = fn.runner.config

    def one(s):
        data, _ = read_bytes(s)
        if how == "simplejpeg":
            import simplejpeg
            from PIL import Image

            img = Image.fromarray(simplejpeg.decode_jpeg(data, colorspace="RGB", min_height=cfg.resize_size,
                                                         min_width=cfg.resize_size))
            return fn.runner.preprocess(img)
        return fn.decode(data)[0]

    t = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        n = sum(x is not None for x in pool.map(one, samples))
    return n / (time.perf_counter() - t)


def model_only(runner, size: int, batch: int, calls: int = 4) -> float:
    x = np.random.default_rng(0).normal(size=(batch, 3, size, size)).astype(np.float32)
    runner(x)
    t = time.perf_counter()
    for _ in range(calls):
        runner(x)
    return calls * batch / (time.perf_counter() - t)


def lower_precision_runners(model: str, int8: bool) -> dict:
    """OpenVINO bf16 (CPUs with bf16) and int8 (``--int8``: built by the NNCF recipe, minutes the
    first time), each only past the quality gate; a refusal prints its figures."""
    from wordsight.features.engines import QuantizationRefused, make_runner
    from wordsight.features.engines.cpu import has_bf16

    out = {}
    for precision, wanted in (("bf16", has_bf16()), ("int8", int8)):
        if not wanted:
            print(f"OpenVINO {precision}: " + ("not run (this CPU has no AVX512_BF16/AMX)" if precision == "bf16"
                                              else "not run (--int8 builds and gates it)"))
            continue
        try:
            out[f"openvino {precision}"] = make_runner(model, "openvino", precision)
        except QuantizationRefused as e:
            print(f"OpenVINO {precision}: {e}")
    return out


def median(v):
    return float(np.median(v)) if len(v) else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-images", type=int, default=1000, help="photo-sized JPEGs")
    ap.add_argument("--naive-n", type=int, default=50, help="images the (slow) naive loop is timed on")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--int8", action="store_true", help="build (first time: minutes), gate and time OpenVINO int8")
    ap.add_argument("--ray", action="store_true", help="also the Ray engine (2 actors, start-up included)")
    ap.add_argument("--model-only", action="store_true", help="only the model-alone figures (no images)")
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "wordsight-bench"))
    args = ap.parse_args()

    import torch

    from wordsight.encoders import load_model
    from wordsight.features.engines import TorchRunner, engine_choice, make_runner
    from wordsight.features.engines.cpu import capabilities, cpu_model
    from wordsight.features.engines.default_precision import pinned
    from wordsight.features.engines.tuning import tuned_batch_size
    from wordsight.io.sources import Sample

    work = Path(args.workdir)
    caps = capabilities()
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs, bf16 (AVX512_BF16/AMX): {caps['bf16']}, int8 dot "
          f"products (VNNI/AMX-INT8): {caps['int8_vnni']}, load average {os.getloadavg()[0]:.1f} at start, "
          f"torch threads {torch.get_num_threads()}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in engine_choice.versions().items())
          + (f"; $WORDSIGHT_PRECISION pins auto to {pinned()}" if pinned() else ""))
    enc = load_model(args.model)
    size = enc.config.input_size
    g224 = model_gflops(enc, size)
    default = make_runner(args.model)  # engine='auto': measured once per machine (cached), outside the timings
    runners = {"default (auto)": default, "onnxruntime fp32": make_runner(args.model, "onnx"),
               "openvino fp32": make_runner(args.model, "openvino"),
               **lower_precision_runners(args.model, args.int8), "pytorch (competent)": TorchRunner(enc)}
    batches = {k: 32 if k.startswith("pytorch") else tuned_batch_size(r, size) for k, r in runners.items()}
    entry = engine_choice.choice_entry(enc, "auto") or {}
    print(f"default (precision auto, engine auto): {default.engine} {default.precision}; measured "
          f"{entry.get('measured', '-')}: {entry.get('images_per_second', 'one candidate')}; batch sizes {batches}")
    model_rates: dict[str, list] = {k: [] for k in runners}
    gemm: dict[str, list] = {}
    for _ in range(args.rounds):  # interleaved: each round times every runner once
        for k, r in runners.items():
            model_rates[k].append(model_only(r, size, batches[k]))
        for k, v in gemm_peaks().items():
            gemm.setdefault(k, []).append(v)
    peak_lib = max(gemm, key=lambda k: median(gemm[k]))
    peak = median(gemm[peak_lib])
    print("fp32 GEMM GFLOP/s (median): " + ", ".join(f"{k} {median(v):.0f}" for k, v in gemm.items())
          + f" -> FLOP limit {peak / g224:.0f} img/s at {g224:.2f} GFLOP/image ({peak_lib})")
    print(f"\nmodel alone, no decoding ({args.rounds} interleaved rounds, median img/s, share of the FLOP limit):")
    m = {k: median(v) for k, v in model_rates.items()}
    for k, v in model_rates.items():
        print(f"  {k:<22} {m[k]:8.1f}  {m[k] * g224 / peak:5.0%}   rounds: {', '.join(f'{x:.1f}' for x in v)}")
    ort = m["onnxruntime fp32"]
    print(f"  default / ONNX Runtime fp32 = {m['default (auto)'] / ort:.2f}x (goal >= 2x: "
          f"{'met' if m['default (auto)'] >= 2 * ort else 'not met'})")
    for k in runners:
        if k.startswith("openvino"):
            print(f"  {k} / ONNX Runtime fp32 = {m[k] / ort:.2f}x")
    if args.model_only:
        return

    paths = make_jpegs(work / "jpegs", args.n_images)
    jpegs = [Sample(p) for p in paths]
    with PeakRSS() as mem:
        naive = naive_loop(jpegs[: args.naive_n + 1], args.model)
    print(f"\n{args.n_images} JPEG 1024x768; naive loop {naive:.1f} img/s (timed on {args.naive_n}, peak RSS "
          f"{mem.peak / 2**30:.2f} GiB)")
    e2e = {"wordsight default (auto)": lambda: local_engine(jpegs, args.model),
           "wordsight onnxruntime fp32": lambda: local_engine(jpegs, args.model, engine="onnx", precision="fp32"),
           "pytorch (competent)": lambda: competent_torch(paths, args.model),
           "decode only (Pillow draft)": lambda: decode_only(jpegs, args.model),
           "decode only (simplejpeg)": lambda: decode_only(jpegs, args.model, "simplejpeg")}
    for k in runners:
        if k.startswith("openvino") and not k.endswith("fp32"):
            e2e[f"wordsight {k}"] = (lambda p=k.split()[1]: local_engine(jpegs, args.model, precision=p))
    rates: dict[str, list] = {k: [] for k in e2e}
    peaks: dict[str, int] = {}
    for _ in range(args.rounds):
        for k, f in e2e.items():
            with PeakRSS() as mem:
                rates[k].append(f())
            peaks[k] = max(peaks.get(k, 0), mem.peak)
    if args.ray:
        from wordsight.features.engines.ray_engine import init_ray

        init_ray()
        with PeakRSS(tree=True) as mem:
            rates["wordsight ray (2 actors, start-up incl.)"] = [ray_engine(jpegs, args.model, work)]
        peaks["wordsight ray (2 actors, start-up incl.)"] = mem.peak
    r = {k: median(v) for k, v in rates.items()}
    print(f"end to end ({args.rounds} interleaved rounds, median img/s; vs naive; share of the FLOP limit):")
    for k, v in rates.items():
        print(f"  {k:<40} {r[k]:8.1f}  {r[k] / naive:5.1f}x  {r[k] * g224 / peak:5.0%}  peak RSS "
              f"{peaks[k] / 2**30:.2f} GiB   rounds: {', '.join(f'{x:.1f}' for x in v)}")
    d, c = r["wordsight default (auto)"], r["pytorch (competent)"]
    limit = min(m["default (auto)"], r["decode only (Pillow draft)"])
    print(f"  default / competent PyTorch = {d / c:.2f}x (goal >= 4x: {'met' if d >= 4 * c else 'not met'})")
    o = r["wordsight onnxruntime fp32"]
    print(f"  default / ONNX Runtime fp32 end to end = {d / o:.2f}x (goal >= 1.5x on a CPU with bf16: "
          f"{'met' if d >= 1.5 * o else 'not met'})")
    print(f"default: {default.engine} {default.precision} on {cpu_model()}")
    print(f"  default end to end / min(model alone {m['default (auto)']:.1f}, decode alone "
          f"{r['decode only (Pillow draft)']:.1f}) = {d / limit:.0%} (goal >= 80%: {'met' if d >= 0.8 * limit else 'not met'})")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
