"""Fashion-MNIST: `fit --search` against the default `fit`, each timed, scored on test images the
search never sees. Prints a table; ``--out`` writes JSON (and the search's leaderboard CSV).

    nice python benchmarks/search_fashion_mnist.py --train-per-class 300 --test-per-class 100 --mode quick
    nice python benchmarks/search_fashion_mnist.py --mode quick --time-limit 3h     # all 60,000 / 10,000

Features go through the shared cache (embed once: a second run times head fits only). The test
images are embedded after the search and the baseline have finished, and only predicted.
With ``--all-kinds`` the single best candidate, the soft vote and the stack are each refitted (same
features, same folds, no new search) and scored on the test images too, to show what the choice left out.
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
from wordsight.training.autofit import search_fit  # noqa: E402

T0 = time.time()


def say(msg: str) -> None:
    print(f"[{time.time() - T0:7.0f}s] {msg}", file=sys.stderr, flush=True)


def accuracy(model, samples) -> float:
    return float(np.mean(model.predict(samples) == np.asarray([s.label for s in samples], dtype=object)))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-per-class", type=int, default=None, help="default: all 6,000")
    p.add_argument("--test-per-class", type=int, default=None, help="default: all 1,000")
    p.add_argument("--mode", default="quick", choices=["quick", "thorough"])
    p.add_argument("--time-limit", default="10m")
    p.add_argument("--encoders", default=None, help="comma-separated pool (default: the search's)")
    p.add_argument("--ensemble", default="auto")
    p.add_argument("--all-kinds", action="store_true", help="also refit and test single / vote / stack")
    p.add_argument("--skip-baseline", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="JSON results (the leaderboard CSV beside it)")
    args = p.parse_args(argv)
    res = {"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    train = fashion_samples("train", per_class=args.train_per_class, seed=args.seed)
    test = fashion_samples("test", per_class=args.test_per_class, seed=args.seed)
    res.update(n_train=len(train), n_test=len(test))
    say(f"{len(train)} training, {len(test)} test images")
    base = dict(batch_size=16, quiet=True)

    if not args.skip_baseline:
        say("baseline: the default fit (efficientnet-lite0, logistic, C cross-validated)")
        t = time.perf_counter()
        clf = Classifier(**base).fit(train)
        res["baseline"] = {"fit_seconds": round(time.perf_counter() - t, 1)}
        res["baseline"]["test_accuracy"] = accuracy(clf, test)
        say(f"baseline: {res['baseline']}")

    say(f"search: {args.mode}, time limit {args.time_limit}")
    t = time.perf_counter()
    out = search_fit(train, mode=args.mode, time_limit=args.time_limit, ensemble=args.ensemble,
                     encoders=args.encoders.split(",") if args.encoders else None, seed=args.seed, log=say, **base)
    seconds = time.perf_counter() - t
    res["search"] = {**out.to_json(), "seconds_total": round(seconds, 1)}
    say(f"search done in {seconds:.0f} s: {out.chosen} ({'; '.join(out.members)})")
    res["search"]["test_accuracy"] = accuracy(out.model, test)
    say(f"search's model on the test images: {res['search']['test_accuracy']:.4f}")
    print(out.result.table(30))

    if args.all_kinds:  # the other options, refitted on the same features and folds
        from wordsight.training.autofit import refit

        res["kinds"], fitted = {}, {}
        for kind, cv_acc, members in out.options:
            if kind == out.chosen:
                test_acc = res["search"]["test_accuracy"]
            else:
                model = refit(kind, members, out.result, out.blocks, out.base, acc=cv_acc, seed=args.seed, fitted=fitted)
                test_acc = accuracy(model, test)
            res["kinds"][kind] = {"cv_accuracy": round(cv_acc, 4), "test_accuracy": test_acc,
                                  "members": [t.candidate.name for t in members]}
            say(f"{kind}: cv {cv_acc:.4f}, test {test_acc:.4f}")
    import resource  # peak resident memory of this process (Linux: KiB), the whole run

    res["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    say(f"peak RSS {res['peak_rss_gib']} GiB")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(res, indent=2))
        out.result.write_csv(Path(args.out).with_suffix(".leaderboard.csv"))
    print(json.dumps({k: v for k, v in res.items() if k != "search"} | {
        "search": {k: res["search"][k] for k in ("chosen", "members", "seconds_total", "test_accuracy")}}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
