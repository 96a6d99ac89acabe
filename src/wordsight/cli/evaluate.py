from __future__ import annotations

import sys

from ._anomaly import evaluate_detector_cli
from ._common import add_feature_options, cache_arg, report_failures

HELP = "metrics of a saved model on labelled images, and an HTML report"


def parse_ks(text: str | None):
    if not text:
        return None
    try:
        return [int(k) for k in text.split(",") if k.strip()]
    except ValueError:
        raise ValueError(f"--few-shot takes comma-separated integers like 1,2,4,8,16, not {text!r}") from None


def add_parser(sub):
    p = sub.add_parser("evaluate", help=HELP)
    p.add_argument("model", help="model folder written by `wordsight fit`")
    p.add_argument("data", help="labelled test images (class folders or a manifest)")
    p.add_argument("--report", default=None, help="write metrics.json, PNG plots and index.html to this folder")
    p.add_argument("--train", default=None, help="the training images: adds the image/text/fused/prior ablation")
    p.add_argument("--few-shot", default=None, help="with --train: few-shot curve at these k, e.g. 1,2,4,8,16")
    p.add_argument("--draws", type=int, default=5, help="random draws per k for the few-shot curve")
    p.add_argument("--mistakes", type=int, default=12,
                   help="most confident mistakes (for a detector: most abnormal images) shown in the report")
    p.add_argument("--normal", default=None, help="anomaly detectors: the test labels that are normal, LABEL[,LABEL]")
    add_feature_options(p, model_default=None)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..estimator import load_model_folder
    from ..estimator.anomaly import AnomalyDetector
    from ..evaluate import evaluate, headline_table, write_report

    clf = load_model_folder(args.model)
    if isinstance(clf, AnomalyDetector):
        return evaluate_detector_cli(args, clf)
    clf.set_params(cache=cache_arg(args), batch_size=args.batch_size, quiet=args.quiet)
    log = None if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    results = evaluate(clf, args.data, train=args.train, few_shot_ks=parse_ks(args.few_shot),
                       few_shot_draws=args.draws, mistakes=args.mistakes, log=log)
    print(headline_table(results))
    if args.report:
        path = write_report(results, args.report, title=f"wordsight evaluation of {args.model}", model=clf)
        print(f"report: {path}", file=sys.stderr)
    from ..io.sources import Problem

    failures = [Problem(f["path"], f["reason"]) for f in results["failures"]]
    return report_failures(failures, results["metrics"]["n"], args.strict)
