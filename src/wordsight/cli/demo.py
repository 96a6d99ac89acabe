from __future__ import annotations

import sys
import time
from pathlib import Path

from ._common import add_feature_options

HELP = "Fashion-MNIST end to end: fit, evaluate, zero-shot, HTML report"


def add_parser(sub):
    from ..frontend.counts import count_option

    p = sub.add_parser("demo", help=HELP)
    p.add_argument("--out", default="demo-output", help="folder for the data, the model and the report")
    p.add_argument("--full", action="store_true", help="all 60,000 / 10,000 images (hours on a small CPU)")
    p.add_argument("--per-class", type=int, default=100, help="training images per class (subset)")
    p.add_argument("--test-per-class", type=int, default=50, help="test images per class (subset)")
    p.add_argument("--few-shot", default=None, help="also the few-shot curve at these k, e.g. 1,2,4,8,16")
    p.add_argument("--draws", **count_option("draws"), default=3, help="random draws per k for the few-shot curve")
    p.add_argument("--root", default=None, help="folder with the Fashion-MNIST IDX files")
    from .fit import add_model_options

    add_model_options(p)
    add_feature_options(p, model_default=None)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..evaluate import evaluate, headline_table, write_report
    from ..io.datasets import write_image_folder
    from .evaluate import parse_ks
    from .fit import classifier_from_args, describe_fit, fit_data, fit_notes

    t0 = time.time()
    out = Path(args.out)
    say = (
        (lambda msg: None) if args.quiet else (lambda msg: print(f"[{time.time() - t0:6.0f}s] {msg}", file=sys.stderr))
    )
    per_train = None if args.full else args.per_class
    per_test = None if args.full else args.test_per_class
    data = out / ("data-full" if args.full else f"data-{per_train}-{per_test}")
    say(f"writing Fashion-MNIST to {data} ({'all' if args.full else f'{per_train} train / {per_test} test per class'})")
    train = write_image_folder(data, "train", per_class=per_train, root=args.root)
    test = write_image_folder(data, "test", per_class=per_test, root=args.root)
    search = None
    if args.search:  # the search reads the training images only; the test images are evaluated after
        from ._search import run_search

        search = run_search(args, train, out / "model", log=say)
        clf = search.model
    else:
        clf = classifier_from_args(args)
        say("embedding and fitting the training images")
        clf = fit_data(clf, train, args)
        clf.save(out / "model")
        say(f"fitted: {describe_fit(clf)} -> {out / 'model'}")
        for line in fit_notes(clf):
            say(f"  {line}")
    refits = search is None or search.chosen == "single"  # the ablation and few-shot curve refit a Classifier
    results = evaluate(clf, test, train=train if refits else None, few_shot_ks=parse_ks(args.few_shot),
                       few_shot_draws=args.draws, log=say)
    if search is not None:
        results["search"] = search.to_json()
    path = write_report(results, out / "report", title="wordsight demo: Fashion-MNIST", model=clf)
    print(headline_table(results))
    print(f"\nreport: {path}\nmodel:  {out / 'model'}\ntime:   {time.time() - t0:.0f} s")
    return 0
