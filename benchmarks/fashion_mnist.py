"""Fashion-MNIST benchmark of the Classifier: encoder sets x fusion modes, the few-shot curve
(image-only vs the language prior) and augmentation on/off. Prints tables; ``--out`` writes JSON.

    python benchmarks/fashion_mnist.py --sections fusion,sets --fusions image,concat   # full data
    python benchmarks/fashion_mnist.py --train-per-class 300 --test-per-class 100   # a subset

Every choice (penalty, prior weight) is made inside ``fit`` on training images only; test images
are only predicted. Features go through the shared cache, so a second run only reads them.
``--small-input`` sets the input size for the 28-px images (default ``auto``: the extractor's
160 px; ``none``: the full 224 px). The language prior always reads its view at full size.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _fmnist_data import fashion_samples  # noqa: E402
from wordsight.estimator import Classifier  # noqa: E402
from wordsight.estimator.fusion import PriorFusion  # noqa: E402
from wordsight.evaluate import few_shot_curve  # noqa: E402

T0 = time.time()
# Written by the packaged SmolLM2-135M for the zero-shot benchmark (benchmarks/zeroshot_fashion_mnist.py).
DESCRIPTIONS = Path(__file__).parent / "results" / "zeroshot_fashion_mnist" / "class_descriptions.json"


def say(msg: str) -> None:
    print(f"[{time.time() - T0:7.0f}s] {msg}", file=sys.stderr, flush=True)


def accuracy(clf, blocks) -> float:
    return float(np.mean(clf.predict(blocks) == np.asarray(blocks.labels, dtype=object)))


def parse_sets(text: str) -> list[tuple[str, ...]]:
    return [tuple(e for e in s.split(",") if e) for s in text.split(";") if s]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-per-class", type=int, default=None, help="training images per class (default: all 6,000)")
    p.add_argument("--test-per-class", type=int, default=None, help="test images per class (default: all 1,000)")
    p.add_argument("--test-limit", type=int, default=None, help="at most this many test images (stratified)")
    p.add_argument("--sets", default="efficientnet-lite0;mobilenetv2;efficientnet-lite0,mobilenetv2",
                   help="encoder sets, ';'-separated, encoders in a set ','-separated")
    p.add_argument("--sets-train-per-class", type=int, default=None,
                   help="training images per class for the encoder-set comparison (default: --train-per-class)")
    p.add_argument("--fusions", default="image,text,concat,prior")
    p.add_argument("--heads", default="logistic,mlp", help="heads for the fusion and encoder-set tables")
    p.add_argument("--ks", default="1,2,4,8,16")
    p.add_argument("--draws", type=int, default=5)
    p.add_argument(
        "--augment-per-class", type=int, default=50, help="training images per class for augmentation on/off"
    )
    p.add_argument("--augment", type=int, default=2, help="views per training image when augmentation is on")
    p.add_argument("--sections", default="fewshot,fusion,augment,sets")
    p.add_argument("--small-input", default="auto", help="'none' (224 px), 'auto' (160 px) or a size in px")
    p.add_argument("--class-descriptions", default=str(DESCRIPTIONS),
                   help="LLM-written class descriptions for the 'prior + descriptions' few-shot method ('' to skip)")
    p.add_argument("--seed", type=int, default=0, help="seed of the subsets and of the few-shot draws")
    p.add_argument("--out", default=None, help="write all results to this JSON file")
    args = p.parse_args(argv)
    small = None if args.small_input == "none" else (args.small_input if args.small_input == "auto" else int(args.small_input))
    base = dict(small_input=small, quiet=True, batch_size=16)
    sections = args.sections.split(",")
    results = {"command": " ".join(sys.argv), "train_per_class": args.train_per_class,
               "test_per_class": args.test_per_class, "small_input": args.small_input}

    def save():
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=2))

    say("loading Fashion-MNIST")
    train_s = fashion_samples("train", per_class=args.train_per_class, seed=args.seed)
    test_s = fashion_samples("test", per_class=args.test_per_class, limit=args.test_limit, seed=args.seed)
    lite = Classifier(**base)
    say(f"embedding {len(train_s)} train + {len(test_s)} test images with efficientnet-lite0")
    train, test = lite.extract(train_s), lite.extract(test_s)
    results["n_train"], results["n_test"] = len(train), len(test)
    say(f"{len(train)} train / {len(test)} test")

    if "fewshot" in sections:
        ks = [int(k) for k in args.ks.split(",")]
        methods = {"image-only": Classifier(**base), "prior": Classifier(fusion="prior", **base)}
        if args.class_descriptions:
            desc = json.loads(Path(args.class_descriptions).read_text())
            methods["prior+descr"] = Classifier(fusion=PriorFusion(descriptions=desc), **base)
        fs = few_shot_curve(methods, train, test, ks=ks, draws=args.draws, seed=args.seed, log=say)
        results["few_shot"] = fs
        print(f"\nFew-shot (efficientnet-lite0, {args.draws} draws, {len(test)} test images; pool {len(train)})")
        print(f"{'k':<12}" + "".join(f"{k:>16}" for k in ks))
        for name, res in fs["methods"].items():
            print(f"{name:<12}" + "".join(f"{res[str(k)]['mean']:>9.1%} ±{res[str(k)]['std']:>5.1%}" for k in ks))
        for name in list(methods)[1:]:
            diff = [fs["methods"][name][str(k)]["mean"] - fs["methods"]["image-only"][str(k)]["mean"] for k in ks]
            print(f"{name + ' gain':<12}" + "".join(f"{d * 100:>+15.1f}p" for d in diff), flush=True)
        save()

    heads = args.heads.split(",")
    if "fusion" in sections:
        rows = {}
        print(f"\nFusion modes x heads (efficientnet-lite0, {len(train)} train / {len(test)} test)")
        for fusion in args.fusions.split(","):
            for head in heads:
                t = time.time()
                clf = Classifier(fusion=fusion, head=head, **base).fit(train)
                key = f"{fusion} / {head}"
                rows[key] = {"accuracy": accuracy(clf, test), "C": clf.head_.info.get("C"),
                             "prior_weight": clf.prior_mix_.weight if clf.prior_mix_ else None, "seconds": round(time.time() - t, 1)}
                say(f"{key}: {rows[key]}")
                print(f"{key:<22}{rows[key]['accuracy']:>9.2%}", flush=True)
                if fusion == "prior" and "zero-shot" not in rows:  # its language prior alone
                    zp = clf.classes_[clf.prior_log_proba(test).argmax(1)]
                    rows["zero-shot"] = {"accuracy": float(np.mean(zp == np.asarray(test.labels, dtype=object)))}
                    print(f"{'zero-shot':<22}{rows['zero-shot']['accuracy']:>9.2%}", flush=True)
                results["fusion"] = rows
                save()

    if "augment" in sections:
        sub_idx = np.sort(np.concatenate([np.flatnonzero(np.asarray(train.labels, dtype=object) == c)[: args.augment_per_class]
                                          for c in sorted(set(train.labels))]))
        sub_samples = [train.samples[i] for i in sub_idx]
        rows = {}
        print(f"\nAugmentation (efficientnet-lite0, {len(sub_samples)} train / {len(test)} test)")
        for name, params in (("off", {}), (f"{args.augment} views", {"augment": args.augment})):
            t = time.time()
            clf = Classifier(**base, **params).fit(sub_samples)
            rows[name] = {"accuracy": accuracy(clf, test), "seconds": round(time.time() - t, 1)}
            say(f"augmentation {name}: {rows[name]}")
            print(f"{name:<10}{rows[name]['accuracy']:>9.2%}", flush=True)
        results["augment"] = rows
        save()

    if "sets" in sections:
        n = args.sets_train_per_class or args.train_per_class
        sub_train = fashion_samples("train", per_class=n)
        rows = {}
        print(f"\nEncoder sets ({len(sub_train)} train / {len(test_s)} test)")
        for encs in parse_sets(args.sets):
            for head in heads:
                t = time.time()
                clf = Classifier(encoders=encs, head=head, **base)
                tr, te = clf.extract(sub_train), clf.extract(test_s)
                clf.fit(tr)
                key = f"{'+'.join(encs)} / {head}"
                rows[key] = {"accuracy": accuracy(clf, te), "seconds": round(time.time() - t, 1)}
                say(f"{key}: {rows[key]}")
                print(f"{key:<44}{rows[key]['accuracy']:>9.2%}", flush=True)
                results["sets"] = rows
                save()
        results["sets"] = rows
        save()
    say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
