from __future__ import annotations

import sys

from ._anomaly import evaluate_detector_cli
from ._common import add_feature_options, cache_arg, report_failures

HELP = "metrics of a saved model on labelled images, and an HTML report"


def parse_ks(text: str | None):
    """``--few-shot``'s k values, each within its bounds (:mod:`wordsight.frontend.counts`)."""
    from ..frontend.counts import check_count

    if not text:
        return None
    if not all(k.strip().isdigit() for k in text.split(",") if k.strip()):
        raise ValueError(f"--few-shot takes comma-separated integers like 1,2,4,8,16, not {text!r}")
    return [check_count("few_shot", k, "--few-shot") for k in text.split(",") if k.strip()]


def add_parser(sub):
    from ..frontend.counts import count_option

    p = sub.add_parser("evaluate", help=HELP)
    p.add_argument("model", help="model folder written by `wordsight fit`")
    p.add_argument("data", help="labelled test images (class folders or a manifest)")
    p.add_argument("--report", default=None, help="write metrics.json, PNG plots and index.html to this folder")
    p.add_argument("--train", default=None, help="the training images: adds the image/text/fused/prior ablation")
    p.add_argument("--few-shot", default=None, help="with --train: few-shot curve at these k, e.g. 1,2,4,8,16")
    p.add_argument("--draws", **count_option("draws"), default=5, help="random draws per k for the few-shot curve")
    p.add_argument("--mistakes", **count_option("mistakes"), default=12,
                   help="most confident mistakes (for a detector: most abnormal images) shown in the report")
    p.add_argument("--normal", default=None, help="anomaly detectors: the test labels that are normal, LABEL[,LABEL]")
    p.add_argument("--coverage", type=float, default=None,
                   help="also print the prediction sets' empirical coverage, mean set size and coverage per class")
    p.add_argument("--set-method", choices=["lac", "aps", "raps"], default="lac", help="conformity score of the sets")
    add_feature_options(p, model_default=None)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..estimator import load_model_folder
    from ..estimator.anomaly import AnomalyDetector
    from ..evaluate import evaluate, headline_table, write_report
    from ..io.output_files import check_output_folder

    ks = parse_ks(args.few_shot)  # options and the report folder checked before any work
    if args.report:
        check_output_folder(args.report)
    clf = load_model_folder(args.model)
    if isinstance(clf, AnomalyDetector):
        return evaluate_detector_cli(args, clf)
    clf.set_params(cache=cache_arg(args), batch_size=args.batch_size, quiet=args.quiet)
    if args.coverage is not None or _unknown_labels(clf, args.data):
        return _open_set(args, clf)
    log = None if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    results = evaluate(clf, args.data, train=args.train, few_shot_ks=ks,
                       few_shot_draws=args.draws, mistakes=args.mistakes, log=log)
    print(headline_table(results))
    if args.report:
        path = write_report(results, args.report, title=f"wordsight evaluation of {args.model}", model=clf)
        print(f"report: {path}", file=sys.stderr)
    from ..io.sources import Problem

    failures = [Problem(f["path"], f["reason"]) for f in results["failures"]]
    return report_failures(failures, results["metrics"]["n"], args.strict)


def _unknown_labels(clf, data) -> bool:
    """Whether the test images hold labels that are none of the model's classes."""
    from ..io.sources import open_source

    names = {str(c) for c in clf.classes_}
    return any(s.label is not None and not isinstance(s.label, tuple) and str(s.label) not in names  # sets: task
               for s in open_source(data).samples)


def _open_set(args, clf) -> int:
    """Accuracy on the known classes, unknown-class AUROC and the sets' coverage (evaluate.open_set)."""
    from ..estimator.conformal import check_rate, require_calibration
    from ..evaluate.open_set import open_set_metrics, open_set_table

    if args.coverage is not None:
        check_rate(args.coverage, "--coverage")
    require_calibration(clf, args.model, "--coverage and test images of unknown classes")
    metrics = open_set_metrics(clf, args.data, args.coverage, args.set_method)
    print(open_set_table(metrics))
    if args.report:
        from ..evaluate.open_set import write_open_set_report

        print(f"report: {write_open_set_report(metrics, args.report, f'wordsight sets of {args.model}')}", file=sys.stderr)
    return 0
