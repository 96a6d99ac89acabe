"""Few-shot with the language prior: image-only, today's mixed prior, the PriorProbe, zero-shot.

The few-shot protocol of docs/benchmarks.md: k labelled images per class drawn from a pool (Fashion-MNIST: 300
training images per class), 5 draws per k, the test images only predicted; run once per seed
(different pools, test images and draws). Every choice a method makes is made inside its ``fit``
from the k-shot images alone.

    nice python benchmarks/fewshot_prior.py --task fashion-mnist --seeds 0,1
    nice python benchmarks/fewshot_prior.py --task lfw-faces --seeds 0,1 --ks 1,2,4,8,16

Per draw: ``image-only`` is ``Classifier().fit`` (the default), ``prior (mix)`` is
``Classifier(fusion=PriorFusion(weight="held-out"))`` (weight chosen by leave-one-shot-out folds
or augmented views: the previous default),
``zero-shot`` is that model's language prior alone (centred on the k-shot images, as the prior
that the other two methods use) and ``prior-probe`` is :class:`PriorProbe` fitted on the fused
image features and the prior's log-probabilities of the same k-shot images, as
``Classifier(fusion="prior")`` fits it by default (C: the image head's cross-validated penalty
where it has one, else 0.1). Features go through
the shared cache, so a second run only reads them. ``--save-arrays`` writes the arrays every
learner saw (features, prior log-probabilities per draw, labels) for offline comparisons.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.base import clone

sys.path.insert(0, str(Path(__file__).parent))

from wordsight.estimator import Classifier  # noqa: E402
from wordsight.estimator.fusion import PriorFusion  # noqa: E402
from wordsight.evaluate.fewshot import draw_k_shot  # noqa: E402
from wordsight.io.sources import Sample  # noqa: E402

T0 = time.time()
RESULTS = Path(__file__).parent / "results"
METHODS = ("image-only", "prior (mix)", "prior-probe", "zero-shot")


def say(msg: str) -> None:
    print(f"[{time.time() - T0:7.0f}s] {msg}", file=sys.stderr, flush=True)


def _png(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr, "L").save(buf, format="PNG")
    return buf.getvalue()


def fashion_mnist(seed: int, pool_per_class: int, test_per_class: int):
    from _fmnist_data import fashion_samples

    return (fashion_samples("train", per_class=pool_per_class, seed=seed),
            fashion_samples("test", per_class=test_per_class, seed=seed))


def lfw_faces(seed: int, pool_per_class: int, test_per_class: int):
    """scikit-image's ``lfw_subset``: 100 face crops and 100 non-face crops (25x25 grey), split per
    seed into a pool and test images (at most 60 + 40 per class)."""
    from skimage.data import lfw_subset

    images = lfw_subset()
    labels = np.array(["face"] * 100 + ["background"] * 100)
    rng = np.random.default_rng(seed)
    pool, test = [], []
    for c in ("face", "background"):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_pool = min(pool_per_class, 60)
        for i in idx[:n_pool]:
            pool.append(Sample(f"lfw-subset/{i:03d}.png", c, data=_png((images[i] * 255).round().astype(np.uint8))))
        for i in idx[n_pool:n_pool + test_per_class]:
            test.append(Sample(f"lfw-subset/{i:03d}.png", c, data=_png((images[i] * 255).round().astype(np.uint8))))
    return pool, test


def digits(seed: int, pool_per_class: int, test_per_class: int):
    """scikit-learn's 8x8 digits (1,797 images, 10 classes named by their English words)."""
    from sklearn.datasets import load_digits

    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    d = load_digits()
    images = (d.images / 16 * 255).round().astype(np.uint8)
    rng = np.random.default_rng(seed)
    pool, test = [], []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(d.target == c))
        for i in idx[:pool_per_class]:
            pool.append(Sample(f"digits/{i:04d}.png", names[c], data=_png(images[i])))
        for i in idx[pool_per_class:pool_per_class + test_per_class]:
            test.append(Sample(f"digits/{i:04d}.png", names[c], data=_png(images[i])))
    return pool, test


TASKS = {"fashion-mnist": (fashion_mnist, 300, 100), "lfw-faces": (lfw_faces, 60, 40), "digits": (digits, 100, 70)}


def run_seed(task: str, seed: int, ks, draws: int, base: dict, arrays: dict | None) -> dict:
    make, pool_pc, test_pc = TASKS[task]
    pool_s, test_s = make(seed, pool_pc, test_pc)
    extractor = Classifier(**base)
    say(f"{task} seed {seed}: embedding {len(pool_s)} pool + {len(test_s)} test images")
    pool, test = extractor.extract(pool_s), extractor.extract(test_s)
    y_test = np.asarray(test.labels, dtype=object)
    out = {m: {} for m in METHODS}
    out["prior_weights"] = {}
    for k in ks:
        accs = {m: [] for m in METHODS}
        weights = []
        for d in range(draws):
            idx = draw_k_shot(pool.labels, k, seed + 1000 * d + k)  # as evaluate.few_shot_curve draws
            support = pool.take(idx)
            t = time.time()
            image = clone(Classifier(**base)).fit(support)
            accs["image-only"].append(float(np.mean(image.predict(test) == y_test)))
            mixed = clone(Classifier(fusion=PriorFusion(weight="held-out"), **base)).fit(support)
            accs["prior (mix)"].append(float(np.mean(mixed.predict(test) == y_test)))
            weights.append(float(mixed.prior_mix_.weight))
            if not pool.prior_features:
                mixed.prior_features(pool)  # read once for the whole pool; draws carry it along
                mixed.prior_features(test)
                support = pool.take(idx)
            prior_s, prior_t = mixed.prior_log_proba(support), mixed.prior_log_proba(test)
            accs["zero-shot"].append(float(np.mean(mixed.classes_[prior_t.argmax(1)] == y_test)))
            X_t = mixed.fuse(test).astype(np.float64)
            probe = clone(Classifier(fusion="prior", **base)).fit(support)  # the default: the prior probe
            assert probe.state_.probe is not None
            accs["prior-probe"].append(float(np.mean(probe.predict(test) == y_test)))
            if arrays is not None:
                arrays.setdefault(f"seed{seed}/X_pool", mixed.fuse(pool))
                arrays.setdefault(f"seed{seed}/X_test", X_t.astype(np.float32))
                pool_labels = np.asarray(pool.labels, dtype=object)
                arrays.setdefault(f"seed{seed}/y_pool", np.searchsorted(mixed.classes_, pool_labels))
                arrays.setdefault(f"seed{seed}/y_test", np.searchsorted(mixed.classes_, y_test))
                arrays[f"seed{seed}/k{k}/d{d}/idx"] = idx
                arrays[f"seed{seed}/k{k}/d{d}/prior_support"] = prior_s
                arrays[f"seed{seed}/k{k}/d{d}/prior_test"] = prior_t.astype(np.float32)
                arrays[f"seed{seed}/k{k}/d{d}/prior_pool"] = mixed.prior_log_proba(pool).astype(np.float32)
                for m in METHODS:
                    arrays[f"seed{seed}/k{k}/d{d}/acc/{m}"] = np.array(accs[m][-1])
            say(f"seed {seed} k={k} draw {d}: " + ", ".join(f"{m} {accs[m][-1]:.3f}" for m in METHODS)
                + f" (weight {weights[-1]}, {time.time() - t:.1f}s)")
        for m in METHODS:
            out[m][str(k)] = {"mean": float(np.mean(accs[m])), "std": float(np.std(accs[m])), "runs": accs[m]}
        out["prior_weights"][str(k)] = weights
    out["n_pool"], out["n_test"] = len(pool), len(test)
    return out


def table(results: dict, ks) -> str:
    seeds = list(results["seeds"])
    lines = [f"{'k':<28}" + "".join(f"{k:>9}" for k in ks)]
    for m in METHODS:
        mean = [np.mean([results["seeds"][s][m][str(k)]["mean"] for s in seeds]) for k in ks]
        lines.append(f"{m + ' (mean)':<28}" + "".join(f"{v:>9.1%}" for v in mean))
        for s in seeds:
            per = [results["seeds"][s][m][str(k)]["mean"] for k in ks]
            lines.append(f"{'  seed ' + s:<28}" + "".join(f"{v:>9.1%}" for v in per))
    for ref in ("image-only", "zero-shot"):
        gain = [np.mean([results["seeds"][s]["prior-probe"][str(k)]["mean"] - results["seeds"][s][ref][str(k)]["mean"]
                         for s in seeds]) * 100 for k in ks]
        lines.append(f"{'probe - ' + ref + ' (pts)':<28}" + "".join(f"{v:>+9.1f}" for v in gain))
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=sorted(TASKS), default="fashion-mnist")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--ks", default="1,2,4,8,16")
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--out", default=None, help="JSON results (default: benchmarks/results/fewshot_prior_TASK.json)")
    p.add_argument("--save-arrays", default=None, help="write the arrays every learner saw to this .npz")
    args = p.parse_args(argv)
    ks = [int(k) for k in args.ks.split(",")]
    base = dict(small_input="auto", quiet=True, batch_size=16)
    arrays = {} if args.save_arrays else None
    results = {"command": " ".join(["python"] + sys.argv), "task": args.task, "ks": ks, "draws": args.draws,
               "seeds": {}}
    out = Path(args.out) if args.out else RESULTS / f"fewshot_prior_{args.task}.json"
    for seed in (int(s) for s in args.seeds.split(",")):
        results["seeds"][str(seed)] = run_seed(args.task, seed, ks, args.draws, base, arrays)
        out.write_text(json.dumps(results, indent=2))
        if arrays is not None:
            np.savez_compressed(args.save_arrays, **arrays)
    print(f"\nFew-shot on {args.task} (efficientnet-lite0, {args.draws} draws per k and seed; "
          "accuracy on the test images)")
    print(table(results, ks))
    say(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
