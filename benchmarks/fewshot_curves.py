"""Few-shot curves on tasks of very different zero-shot strength: zero-shot, image-only and the
default learner at k = 0, 1, 2, 4, 8, 16 labelled images per class (issue 26: the default must
never fall below zero-shot or image-only by more than a point on the mean of the draws).

Tasks (all offline): ``fashion-mnist`` (10 classes, the README protocol: a pool of 300 training
images per class, 100 test images per class), ``fm-easy`` (Trouser vs Bag: a strong prior),
``fm-hard`` (Shirt vs T-shirt/top: a weak one), ``photos`` (random crops of scikit-image's sample
photos: cat, rocket, coffee cup, astronaut, clock, coins; natural photos with a strong prior) and
``lfw-faces`` (scikit-image's faces vs non-faces, where the prior is worse than chance);
``fm-strong`` (Ankle boot vs Bag) and ``fm-boots`` (Ankle boot vs Sneaker): a prior stronger than
the image probe at k = 1..2, the issue's dog/cat case (zero-shot 82%, image-only 65-69%).

    nice python benchmarks/fewshot_curves.py --tasks fm-easy,fm-hard,photos,lfw-faces,fashion-mnist

Per task the images are embedded once (the feature cache) and the prior's reading of every pool
and test image is read once; each draw then fits ``Classifier()`` (image-only), the default that
``wordsight fit`` picks (:func:`~wordsight.estimator.classifier.default_fusion`: the prior
learner below 16 images per class) and reads the zero-shot prior alone (centred on the other
classes' share of the k-shot images' mean, as the default's prior). k = 0 is the zero-shot pipeline on the test images (``wordsight
zeroshot``). Every choice a learner makes is made inside its ``fit`` from the k-shot images.
Prints one table per task (mean over the draws) and writes the JSON to ``benchmarks/results``.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from wordsight.estimator import Classifier  # noqa: E402
from wordsight.estimator.classifier import default_fusion  # noqa: E402
from wordsight.evaluate.fewshot import draw_k_shot  # noqa: E402
from wordsight.io.sources import Sample  # noqa: E402

T0 = time.time()
RESULTS = Path(__file__).parent / "results"
METHODS = ("zero-shot", "image-only", "default")
BASE = dict(small_input="auto", quiet=True, batch_size=16)


def say(msg: str) -> None:
    print(f"[{time.time() - T0:7.0f}s] {msg}", file=sys.stderr, flush=True)


def _png(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def fashion(seed: int, classes=None, pool_pc: int = 300, test_pc: int = 100):
    from _fmnist_data import fashion_samples

    keep = (lambda s: s.label in classes) if classes else (lambda s: True)
    return ([s for s in fashion_samples("train", per_class=pool_pc, seed=seed) if keep(s)],
            [s for s in fashion_samples("test", per_class=test_pc, seed=seed) if keep(s)])


PHOTOS = {"cat": "chelsea", "rocket": "rocket", "coffee cup": "coffee", "astronaut": "astronaut",
          "clock": "clock", "coins": "coins"}


def photos(seed: int, pool_pc: int = 40, test_pc: int = 40):
    """Random square crops (45-90% of the short side, random place and mirror, 128 px) of
    scikit-image's sample photos, one class per photo; pool and test crops are drawn apart."""
    import skimage.data as data
    from PIL import Image

    rng = np.random.default_rng(seed)
    pool, test = [], []
    for name, fn in PHOTOS.items():
        img = getattr(data, fn)()
        img = np.repeat(img[..., None], 3, 2) if img.ndim == 2 else img
        h, w = img.shape[:2]
        for i in range(pool_pc + test_pc):
            s = int(rng.uniform(0.45, 0.9) * min(h, w))
            top, left = rng.integers(0, h - s + 1), rng.integers(0, w - s + 1)
            crop = img[top:top + s, left:left + s]
            crop = crop[:, ::-1] if rng.random() < 0.5 else crop
            arr = np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize((128, 128), Image.BILINEAR))
            (pool if i < pool_pc else test).append(Sample(f"photos/{fn}/{seed}-{i:03d}.png", name, data=_png(arr)))
    return pool, test


def lfw_faces(seed: int, pool_pc: int = 60, test_pc: int = 40):
    """scikit-image's ``lfw_subset`` (100 face and 100 non-face crops, 25x25 grey), split per seed."""
    from skimage.data import lfw_subset

    images = (lfw_subset() * 255).round().astype(np.uint8)
    labels = np.array(["face"] * 100 + ["background"] * 100)
    rng = np.random.default_rng(seed)
    pool, test = [], []
    for c in ("face", "background"):
        idx = rng.permutation(np.flatnonzero(labels == c))
        pool += [Sample(f"lfw-subset/{i:03d}.png", c, data=_png(images[i])) for i in idx[:pool_pc]]
        test += [Sample(f"lfw-subset/{i:03d}.png", c, data=_png(images[i])) for i in idx[pool_pc:pool_pc + test_pc]]
    return pool, test


TASKS = {
    "fashion-mnist": lambda seed: fashion(seed),
    "fm-easy": lambda seed: fashion(seed, ("Trouser", "Bag")),
    "fm-hard": lambda seed: fashion(seed, ("Shirt", "T-shirt/top")),
    # strong prior, weak image probe at k = 1..2 (chosen by measurement among the 45 pairs: the
    # 10-class prior restricted to a pair against a 1-shot image probe, seed 0): the issue's
    # dog/cat case, where the language must keep winning
    "fm-strong": lambda seed: fashion(seed, ("Ankle boot", "Bag")),
    "fm-boots": lambda seed: fashion(seed, ("Ankle boot", "Sneaker")),
    "photos": photos,
    "lfw-faces": lfw_faces,
    # tasks of 3 and 5 classes that no constant was chosen on (docs/benchmarks.md, issue 26)
    "fm-3": lambda seed: fashion(seed, ("T-shirt/top", "Trouser", "Bag")),
    "fm-5": lambda seed: fashion(seed, ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat")),
    "fm-shoes": lambda seed: fashion(seed, ("Sandal", "Sneaker", "Ankle boot")),
}


def zero_shot_k0(model, test, y_test) -> float:
    """``wordsight zeroshot`` on the test images: the prior's pipeline, centred as ``auto`` says."""
    pipe = model.fusion_.pipeline(model, test.probs_encoder, model.prior_.view_)
    pipe.center = "auto"
    reading = model.fusion_.prior_features(model.prior_, test)
    pipe.view_ = model.prior_.view_
    pipe.fit(reading=reading, view=model.prior_.view_)
    return float(np.mean(model.classes_[pipe.log_proba_reading(reading).argmax(1)] == y_test))


def run_task(task: str, seed: int, ks, draws: int) -> dict:
    pool_s, test_s = TASKS[task](seed)
    say(f"{task} seed {seed}: embedding {len(pool_s)} pool + {len(test_s)} test images")
    extractor = Classifier(**BASE)
    pool, test = extractor.extract(pool_s), extractor.extract(test_s)
    y_test = np.asarray(test.labels, dtype=object)
    out = {m: {} for m in METHODS}
    out["chosen"] = {}
    for k in ks:
        accs, chosen = {m: [] for m in METHODS}, []
        for d in range(draws):
            idx = draw_k_shot(pool.labels, k, seed + 1000 * d + k)  # as evaluate.few_shot_curve draws
            support = pool.take(idx)
            prior_model = Classifier(fusion="prior", **BASE).fit(support)
            if not pool.prior_features:  # read once for the whole pool and test; draws carry it along
                prior_model.prior_features(pool)
                prior_model.prior_features(test)
                support = pool.take(idx)
                out["zero-shot"]["0"] = {"mean": zero_shot_k0(prior_model, test, y_test)}
            accs["zero-shot"].append(float(np.mean(
                prior_model.classes_[prior_model.prior_log_proba(test).argmax(1)] == y_test)))
            image = Classifier(**BASE).fit(support)
            accs["image-only"].append(float(np.mean(image.predict(test) == y_test)))
            fusion = default_fusion(support.labels)
            default = prior_model if fusion == "prior" else image
            accs["default"].append(float(np.mean(default.predict(test) == y_test)))
            chosen.append(_what_was_chosen(default))
            say(f"{task} seed {seed} k={k} draw {d}: " + ", ".join(f"{m} {accs[m][-1]:.3f}" for m in METHODS)
                + f" [{chosen[-1]}]")
        for m in METHODS:
            out[m][str(k)] = {"mean": float(np.mean(accs[m])), "std": float(np.std(accs[m])), "runs": accs[m]}
        out["chosen"][str(k)] = chosen
    out["n_pool"], out["n_test"], out["classes"] = len(pool), len(test), sorted(set(pool.labels))
    return out


def _what_was_chosen(model) -> str:
    probe = getattr(model.state_, "probe", None)
    if probe is None:
        return "image"
    info = probe.info
    return str(info.get("choice", info.get("how", "")))


def table(task: str, results: dict, ks) -> str:
    seeds = list(results)
    cols = ["0", *[str(k) for k in ks]]
    lines = [f"| {task} (k) | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for m in METHODS:
        row = []
        for c in cols:
            vals = [results[s][m][c]["mean"] for s in seeds if c in results[s][m]]
            row.append(f"{100 * np.mean(vals):.1f}" if vals else ("=zero-shot" if m == "default" else "-"))
        lines.append(f"| {m} | " + " | ".join(row) + " |")
    for ref in ("zero-shot", "image-only"):
        gain = [np.mean([results[s]["default"][str(k)]["mean"] - results[s][ref][str(k)]["mean"] for s in seeds])
                for k in ks]
        lines.append(f"| default - {ref} (pts) | - | " + " | ".join(f"{100 * g:+.1f}" for g in gain) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="fm-easy,fm-hard,photos,lfw-faces,fashion-mnist")
    p.add_argument("--seeds", default="0")
    p.add_argument("--ks", default="1,2,4,8,16")
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--out", default=None, help="JSON results (default: benchmarks/results/fewshot_curves.json)")
    args = p.parse_args(argv)
    ks = [int(k) for k in args.ks.split(",")]
    out = Path(args.out) if args.out else RESULTS / "fewshot_curves.json"
    results = {"command": " ".join(["python"] + sys.argv), "ks": ks, "draws": args.draws, "tasks": {}}
    for task in args.tasks.split(","):
        per_seed = {}
        for seed in (int(s) for s in args.seeds.split(",")):
            per_seed[str(seed)] = run_task(task, seed, ks, args.draws)
            results["tasks"][task] = per_seed
            out.write_text(json.dumps(results, indent=2))
        print(f"\n{table(task, per_seed, ks)}", flush=True)
    say(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
